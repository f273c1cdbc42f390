"""Export a stored flow: as a Langflow-importable document, or as a Python script.

The document is the flow as it was uploaded, with the stored metadata (name,
endpoint name, ...) written back on top, and every literal secret (a
``password`` field that does not name a global variable) blanked, as
Langflow's export does unless asked to keep API keys. The script embeds that
document and runs it in-process with ``flowserve.run_flow``: no server.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from flowserve import __version__
from flowserve.engine import Graph
from flowserve.snippets import (
    DEFAULT_INPUT,
    py_str,
    python_literal,
    run_types,
    tweakable_fields,
)
from flowserve.store.base import FlowRecord


def export_document(record: FlowRecord) -> dict[str, Any]:
    """The flow as Langflow imports it (``Upload flow`` / ``POST /api/v1/flows/``)."""
    document = copy.deepcopy(record.data)
    if "data" not in document and "nodes" in document:
        document = {"data": document}
    document.update(
        id=record.id,
        name=record.name,
        description=record.description,
        endpoint_name=record.endpoint_name,
        webhook=record.webhook,
        access_type=record.access_type,
        mcp_enabled=record.mcp_enabled,
    )
    document.setdefault("is_component", False)
    document.setdefault("tags", [])
    _blank_secrets(document)
    return document


def _templates(document: dict[str, Any]) -> list[dict[str, Any]]:
    data = document.get("data")
    nodes = data.get("nodes") if isinstance(data, dict) else None
    found: list[dict[str, Any]] = []
    for raw in nodes if isinstance(nodes, list) else ():
        body = raw.get("data") if isinstance(raw, dict) else None
        node = body.get("node") if isinstance(body, dict) else None
        template = node.get("template") if isinstance(node, dict) else None
        if isinstance(template, dict):
            found.append(template)
    return found


def _blank_secrets(document: dict[str, Any]) -> None:
    for template in _templates(document):
        for field in template.values():
            if (
                isinstance(field, dict)
                and field.get("password")
                and not field.get("load_from_db")
                and field.get("value")
            ):
                field["value"] = ""


def _docstring_safe(text: str) -> str:
    """``text`` for the inside of a double-quoted docstring: it must never close it.
    A flow's name is anyone's with write access, and the script is run by whoever
    downloads it: no quote, backslash or line break of the name reaches the source."""
    return re.sub(r"\s+", " ", text.replace('"', "'").replace("\\", "/")).strip()


def export_filename(record: FlowRecord, suffix: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", record.endpoint_name or record.name).strip("-.")
    return f"{stem or record.id}{suffix}"


def python_script(record: FlowRecord, graph: Graph) -> str:
    """A standalone script running this flow with flowserve embedded."""
    document = export_document(record)
    # The script never needs component source code (flowserve does not run it),
    # and it is most of a Langflow file's size.
    for template in _templates(document):
        template.pop("code", None)
    input_type, output_type = run_types(graph)
    tweaks = tweakable_fields(graph, input_type)
    title = _docstring_safe(record.name)
    filename = export_filename(record, ".py")
    return _SCRIPT.format(
        title=title,
        version=__version__,
        filename=filename,
        default_input=py_str(DEFAULT_INPUT),
        input_type=py_str(input_type),
        output_type=py_str(output_type),
        tweaks=python_literal(tweaks),
        flow=python_literal(document),
    )


_SCRIPT = '''#!/usr/bin/env python3
"""Run the flow "{title}" in this process, with flowserve embedded: no server.

Exported by flowserve {version}. Needs flowserve installed (pip install flowserve).

    python {filename} "your input"
    python {filename} --json "your input"     # the full Langflow-shaped result

Model provider keys and other global variables are read from the environment
(OPENAI_API_KEY, ...). Edit TWEAKS to override fields of the flow's nodes.
"""

from __future__ import annotations

import argparse
import json
import sys

import flowserve
from flowserve.errors import FlowserveError

INPUT_TYPE = {input_type}
OUTPUT_TYPE = {output_type}

TWEAKS = {tweaks}

FLOW = {flow}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_value", nargs="?", default={default_input})
    parser.add_argument("--session-id", help="continue this conversation")
    parser.add_argument("--json", action="store_true", help="print the full result")
    args = parser.parse_args()
    try:
        result = flowserve.run_flow(
            FLOW,
            input_value=args.input_value,
            tweaks=TWEAKS,
            session_id=args.session_id,
            input_type=INPUT_TYPE,
            output_type=OUTPUT_TYPE,
        )
    except FlowserveError as exc:
        print(f"error: {{exc.detail}}", file=sys.stderr)
        return 1
    if args.json:
        body = {{
            "session_id": result.session_id,
            "outputs": result.outputs,
            "metadata": result.metadata,
        }}
        print(json.dumps(body, indent=2))
    else:
        print(result.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
