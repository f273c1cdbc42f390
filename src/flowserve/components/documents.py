"""Text out of an uploaded document's bytes: what the File component reads.

CPU-bound and synchronous: callers run ``extract`` in a thread. PDF goes through
pypdf. DOCX is a zip whose ``word/document.xml`` holds the text in ``<w:t>``
runs; a 40-line reader does it without python-docx and the lxml it pulls in, and
lets us bound the decompressed size (a zip bomb is refused, not inflated).
Everything else Langflow reads as text is decoded as text (UTF-8, its BOMs, then
cp1252), JSON normalised as Langflow does, CSV also split into rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from typing import Any
from xml.etree import ElementTree

import msgspec

from flowserve.errors import Invalid

# Langflow's TEXT_FILE_TYPES: what its File component reads without Docling.
TEXT_TYPES = (
    "txt",
    "md",
    "mdx",
    "csv",
    "json",
    "yaml",
    "yml",
    "xml",
    "html",
    "htm",
    "py",
    "sh",
    "sql",
    "js",
    "ts",
    "tsx",
)
SUPPORTED = (*TEXT_TYPES, "pdf", "docx")

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DOCX_BODY = "word/document.xml"
_MAX_CSV_ROWS = 100_000


class UnreadableFile(Invalid):
    code = "unreadable_file"


def kind_of(name: str) -> str:
    """The extension that picks a parser ("pdf"), lowercased; "" when none."""
    dot = name.rfind(".")
    return name[dot + 1 :].lower() if dot > 0 else ""


def decode_text(data: bytes, encoding: str = "") -> tuple[str, str]:
    """The text and the encoding it was read with: the one asked for, else a BOM's,
    else UTF-8, else cp1252 (Windows' Latin-1, which decodes any byte but five)."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError as exc:
            raise UnreadableFile(f"Unknown text encoding '{encoding[:40]}'") from exc
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"The file is not valid {encoding}: {exc.reason}") from exc
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16")):
        if data.startswith(bom):
            return data.decode(name), name
    if data.startswith(codecs.BOM_UTF16_BE):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader  # imported on first use: most runs read no PDF
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableFile("The PDF is encrypted; upload it without a password")
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableFile(f"Not a readable PDF: {exc}") from exc


def docx_text(data: bytes, max_bytes: int) -> str:
    """The paragraphs of a DOCX body (tables' cells included), blank-line separated."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo(_DOCX_BODY)
            if info.file_size > max_bytes:
                raise UnreadableFile(f"The document expands beyond {max_bytes} bytes")
            with archive.open(info) as body:
                xml = body.read(max_bytes + 1)
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError) as exc:
        raise UnreadableFile(f"Not a readable DOCX file: {exc}") from exc
    if len(xml) > max_bytes:  # the declared size lied
        raise UnreadableFile(f"The document expands beyond {max_bytes} bytes")
    if b"<!DOCTYPE" in xml.upper():  # Word never writes one: no DTD, no entity tricks
        raise UnreadableFile("Not a readable DOCX file: its body declares a DTD")
    try:
        # Safe without defusedxml: with no DTD there are no entities to expand or fetch.
        root = ElementTree.fromstring(xml)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise UnreadableFile(f"Not a readable DOCX file: {exc}") from exc
    paragraphs: list[str] = []
    for paragraph in root.iter(f"{_W}p"):
        parts: list[str] = []
        for element in paragraph.iter():
            if element.tag == f"{_W}t" and element.text:
                parts.append(element.text)
            elif element.tag == f"{_W}tab":
                parts.append("\t")
            elif element.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
        paragraphs.append("".join(parts))
    return "\n\n".join(paragraphs)


def json_text(text: str) -> str:
    """Langflow re-serialises JSON compactly (and so checks it is JSON)."""
    try:
        return msgspec.json.encode(msgspec.json.decode(text)).decode()
    except msgspec.DecodeError as exc:
        raise UnreadableFile(f"Not valid JSON: {exc}") from exc


def csv_rows(text: str) -> list[dict[str, Any]]:
    """A CSV file's rows as dicts by header (Langflow's structured CSV output)."""
    reader = csv.DictReader(io.StringIO(text))
    rows: list[dict[str, Any]] = []
    try:
        for row in reader:
            if len(rows) >= _MAX_CSV_ROWS:
                break
            rows.append({str(k): v for k, v in row.items() if k is not None})
    except csv.Error as exc:
        raise UnreadableFile(f"Not valid CSV: {exc}") from exc
    return rows


def extract(name: str, data: bytes, *, encoding: str = "", max_bytes: int) -> dict[str, Any]:
    """What the File component makes of one file: ``{"text": ...}`` plus, for text
    formats, the encoding used, and for CSV the ``rows``."""
    kind = kind_of(name)
    if kind == "pdf":
        return {"text": pdf_text(data)}
    if kind == "docx":
        return {"text": docx_text(data, max_bytes)}
    text, used = decode_text(data, encoding)
    result: dict[str, Any] = {"text": text, "encoding": used}
    if kind == "json":
        result["text"] = json_text(text)
    elif kind == "csv":
        result["rows"] = csv_rows(text)
    return result
