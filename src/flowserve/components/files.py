"""Files in flows: Read File (Langflow's ``File``) and Write File (``SaveToFile``).

Both reach the file store only through ``services["files"]`` (``engine.RunFiles``),
by the paths the files API hands out; neither ever opens a path on the server's
filesystem. A run reads the files of the key that submitted it (all of them
for an admin key), and any file named in the flow's own saved definition: the
flow's writer put it there. Anything else is a 404 naming the path, alike
whether the file exists or not.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Mapping
from typing import Any

import msgspec

from flowserve.components.data import as_rows
from flowserve.components.documents import SUPPORTED, extract, kind_of
from flowserve.engine.component import Component, Input, NodeContext, Output, RunFiles
from flowserve.engine.types import Data, Message, to_text
from flowserve.errors import FileNotFound, Invalid
from flowserve.flowfile.model import Node

_FILES = "files"
_MAX_PATHS = 100


def _file_service(ctx: NodeContext) -> RunFiles:
    files: RunFiles | None = ctx.run.services.get(_FILES)
    if files is None:
        raise FileNotFound("No file store is configured for this server")
    return files


def _strings(value: Any) -> list[str]:
    """Paths given as a string, a list of them, or (on the ``file_path`` edge) Data
    with a ``file_path`` key or a Message whose text is the path."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list | tuple):
        return [path for item in value for path in _strings(item)]
    if isinstance(value, Data):
        return _strings(value.data.get("file_path"))
    if isinstance(value, Message):
        return _strings(value.text)
    if isinstance(value, dict):
        return _strings(value.get("file_path") or value.get("path"))
    return []


def _saved_paths(node: Node) -> frozenset[str]:
    found: list[str] = []
    for name in ("path", "file_path"):
        field = node.fields.get(name)
        if field is not None:
            found.extend(_strings(field.value))
    return frozenset(found)


class FileComponent(Component):
    type_name = "File"
    display_name = "Read File"
    description = "Loads and returns the content from uploaded files."
    category = "files_and_knowledge"
    icon = "file-text"
    inputs = (
        Input(
            "path",
            "str",
            [],
            "Files",
            "Paths returned by POST /api/v2/files (or v1 uploads): " + ", ".join(SUPPORTED),
            is_list=True,
        ),
        Input(
            "file_path",
            "any",
            None,
            "Server File Path",
            "Data with a 'file_path' key, or a Message whose text is a path. Supersedes 'Files'.",
            advanced=True,
            is_list=True,
            input_types=("Data", "JSON", "Message"),
        ),
        Input("separator", "str", "\n\n", "Separator", advanced=True),
        Input("silent_errors", "bool", False, "Silent Errors", advanced=True),
        Input(
            "ignore_unsupported_extensions",
            "bool",
            True,
            "Ignore Unsupported Extensions",
            advanced=True,
        ),
        Input("text_encoding", "str", "", "Text Encoding", advanced=True),
        # Langflow deletes a server file it was handed once read; uploads here stay until
        # deleted through the files API, so this field is accepted and has no effect.
        Input(
            "delete_server_file_after_processing",
            "bool",
            True,
            "Delete Server File After Processing",
            advanced=True,
        ),
    )
    outputs = (
        Output("message", ("Message",), "Raw Content", "load_files_message"),
        Output("dataframe", ("DataFrame", "Table"), "Files", "load_files"),
        Output("path", ("Message",), "File Path", "load_files_path"),
    )

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self._saved = _saved_paths(node)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        paths = _strings(params.get("file_path")) or _strings(params.get("path"))
        if not paths:
            raise Invalid("No file given: set 'path' to a path returned by POST /api/v2/files")
        if len(paths) > _MAX_PATHS:
            raise Invalid(f"At most {_MAX_PATHS} files can be read at once")
        files = _file_service(ctx)
        loaded = [
            row
            for path in dict.fromkeys(paths)
            if (row := await self._load(ctx, files, path, params)) is not None
        ]
        if not loaded:
            raise Invalid("None of the files could be read: " + ", ".join(paths))
        outputs: dict[str, Any] = {}
        if "message" in ctx.wanted:
            separator = params.get("separator")
            sep = separator if isinstance(separator, str) else "\n\n"
            text = sep.join(row.get_text() for row in loaded)
            outputs["message"] = Message(
                text=text, session_id=ctx.run.session_id, flow_id=ctx.run.flow_id
            )
        if "dataframe" in ctx.wanted:
            outputs["dataframe"] = _table(loaded)
        if "path" in ctx.wanted:
            outputs["path"] = Message(
                text="\n".join(str(r.data["file_path"]) for r in loaded),
                session_id=ctx.run.session_id,
                flow_id=ctx.run.flow_id,
            )
        return outputs

    async def _load(
        self, ctx: NodeContext, files: RunFiles, path: str, params: Mapping[str, Any]
    ) -> Data | None:
        if kind_of(path) not in SUPPORTED:
            if params.get("ignore_unsupported_extensions", True):
                ctx.logs.append({"message": f"Skipped {path}: unsupported file type"})
                return None
            raise Invalid(f"Unsupported file type: {path} (supported: {', '.join(SUPPORTED)})")
        name, data = await files.read(path, reader=ctx.run.owner, trusted=path in self._saved)
        encoding = str(params.get("text_encoding") or "")
        try:
            parsed = await asyncio.to_thread(
                extract, path, data, encoding=encoding, max_bytes=max(len(data) * 20, 1 << 20)
            )
        except Invalid as exc:
            if params.get("silent_errors"):
                ctx.logs.append({"message": f"Could not read {path}: {exc.detail}"})
                return None
            raise Invalid(f"Could not read {path}: {exc.detail}") from exc
        rows = parsed.pop("rows", None)
        row = Data({"file_path": path, "name": name, **parsed})
        if rows is not None:
            row.data["rows"] = rows
        return row


def _table(loaded: list[Data]) -> list[Data]:
    """One row per file; a single CSV file as its own rows (Langflow's structured output)."""
    if len(loaded) == 1 and "rows" in loaded[0].data:
        return [Data(dict(r)) for r in loaded[0].data["rows"]]
    return [Data({k: v for k, v in row.data.items() if k != "rows"}) for row in loaded]


# ---- SaveToFile ------------------------------------------------------------------------

_MESSAGE_FORMATS = ("txt", "html", "json", "markdown")
_TABLE_FORMATS = ("csv", "json", "markdown")
_EXTENSIONS = {"markdown": "md"}
_json = msgspec.json.Encoder()


def _input_kind(value: Any) -> str:
    if isinstance(value, Message):
        return "Message"
    if isinstance(value, Data):
        return "Data"
    if isinstance(value, list):
        return "DataFrame"
    return "Message"


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else to_text(value) if value is not None else ""


def _csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()


def _markdown_table(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    head = [line(columns), line(["---"] * len(columns))]
    return "\n".join(head + [line([_cell(row.get(k)) for k in columns]) for row in rows])


def _render(value: Any, kind: str, fmt: str) -> bytes:
    if kind == "Message":
        text = to_text(value)
        if fmt == "json":
            return msgspec.json.format(_json.encode({"message": text}), indent=2)
        if fmt == "markdown":
            return f"**Message:**\n\n{text}".encode()
        return text.encode()
    rows = [row.data for row in as_rows(value)]
    if fmt == "json":
        body: Any = rows[0] if kind == "Data" and len(rows) == 1 else rows
        return msgspec.json.format(_json.encode(body), indent=2)
    if fmt == "csv":
        return _csv(rows).encode()
    return _markdown_table(rows).encode()


class SaveToFile(Component):
    type_name = "SaveToFile"
    display_name = "Write File"
    description = "Save content to a file in the file store and return its path."
    category = "files_and_knowledge"
    icon = "file-text"
    inputs = (
        Input(
            "input",
            "any",
            None,
            "File Content",
            "The input to save.",
            required=True,
            input_types=("Data", "DataFrame", "Message"),
        ),
        Input("file_name", "str", "", "File Name", "Name the file (without a path)."),
        Input(
            "local_format",
            "str",
            "",
            "File Format",
            "Message: txt, html, json, markdown; Data and DataFrame: csv, json, markdown.",
            options=tuple(dict.fromkeys(_TABLE_FORMATS + _MESSAGE_FORMATS)),
        ),
        Input("file_format", "str", "", "File Format (Tool)", advanced=True),
    )
    outputs = (Output("message", ("Message",), "File Path", "save_to_file"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        owner = ctx.run.owner
        if owner is None:
            raise Invalid(
                "Write File saves files as the API key that runs the flow: run it with a key"
            )
        value = params.get("input")
        if value is None or value == "":
            raise Invalid("Input is empty: connect something to 'File Content'")
        kind = _input_kind(value)
        allowed = _MESSAGE_FORMATS if kind == "Message" else _TABLE_FORMATS
        fmt = str(params.get("file_format") or params.get("local_format") or "").lower()
        fmt = fmt or ("json" if kind != "DataFrame" else "csv")
        if fmt not in allowed:
            raise Invalid(f"Invalid file format '{fmt}' for {kind}. Allowed: {', '.join(allowed)}")
        name = _file_name(str(params.get("file_name") or ""), fmt)
        content = await asyncio.to_thread(_render, value, kind, fmt)
        path = await _file_service(ctx).save(name, content, owner=owner)
        text = f"{kind} saved successfully as '{path}'"
        return {
            "message": Message(text=text, session_id=ctx.run.session_id, flow_id=ctx.run.flow_id)
        }


def _file_name(name: str, fmt: str) -> str:
    """The name with the format's extension (the store checks the rest: no paths)."""
    name = name.strip()
    if not name:
        raise Invalid("File name must be provided")
    ext = _EXTENSIONS.get(fmt, fmt)
    return name if kind_of(name) == ext else f"{name}.{ext}"
