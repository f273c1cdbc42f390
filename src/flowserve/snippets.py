"""Code that runs a flow over HTTP: curl, Python (requests, our client) and JavaScript.

Langflow's "API access" pane, headless. A snippet is built from the public
base URL, the flow's endpoint name (else its id) and its tweakable fields: the
visible, unconnected, plainly typed fields of each node (Langflow's
"Temporary overrides"), set to their stored values, so the snippet runs as
printed and shows where to change them. Secrets and fields that name a global
variable are never written into a snippet.
"""

from __future__ import annotations

import json
import shlex
from typing import Any
from urllib.parse import quote

import msgspec

from flowserve.engine import CompiledNode, Graph
from flowserve.store.base import FlowRecord

DEFAULT_INPUT = "hello world!"
API_KEY_VARIABLE = "LANGFLOW_API_KEY"

# Field types whose stored value is a plain scalar a caller may want to override.
_SCALAR_TYPES = frozenset(
    {"str", "prompt", "int", "float", "bool", "slider", "mustache", "query", "tab"}
)
_SCALAR_KINDS = frozenset({"str", "int", "float", "bool"})


class Snippets(msgspec.Struct, frozen=True, kw_only=True):
    """Code that runs one flow, as printed by ``GET /api/v1/flows/{flow}/snippets``."""

    flow_id: str
    url: str
    input_type: str
    output_type: str
    tweaks: dict[str, dict[str, Any]]
    curl: str
    python_requests: str
    python_client: str
    javascript: str


def run_types(graph: Graph) -> tuple[str, str]:
    """The ``input_type`` that reaches the flow's input and the ``output_type`` of its answer.

    The runner routes ``input_value`` to the input nodes whose id contains the
    input type, and picks outputs the same way.
    """
    inputs = " ".join(graph.input_nodes).lower()
    outputs = " ".join(graph.output_nodes).lower()
    input_type = "chat" if "chat" in inputs or "text" not in inputs else "text"
    if "chat" in outputs:
        output_type = "chat"
    elif "text" in outputs:
        output_type = "text"
    else:
        output_type = "any"
    return input_type, output_type


def tweakable_fields(graph: Graph, input_type: str) -> dict[str, dict[str, Any]]:
    """Each node's overridable fields at their stored values, in flow order."""
    tweaks: dict[str, dict[str, Any]] = {}
    templates = raw_templates(graph.flow.raw)
    for node_id in graph.order:
        fed = node_id in graph.input_nodes and input_type in node_id.lower()
        fields = _node_tweaks(graph.nodes[node_id], templates.get(node_id, {}), fed_by_input=fed)
        if fields:
            tweaks[node_id] = fields
    return tweaks


def _node_tweaks(
    node: CompiledNode, raw_template: dict[str, Any], *, fed_by_input: bool
) -> dict[str, Any]:
    connected = {edge.target_field for edge in node.incoming}
    found: dict[str, Any] = {}
    for name, stored in node.node.fields.items():
        if name == "code" or name in connected or (fed_by_input and name == "input_value"):
            continue
        if not stored.show or stored.advanced or stored.load_from_db:
            continue
        spec = node.component.input_named(name)
        if spec is not None and (spec.advanced or spec.kind not in _SCALAR_KINDS):
            continue
        if stored.type not in _SCALAR_TYPES or stored.is_list:
            continue
        raw_field = raw_template.get(name)
        if isinstance(raw_field, dict) and raw_field.get("password"):
            continue
        value = node.defaults.get(name, stored.value)
        if isinstance(value, str | int | float | bool):
            found[name] = value
    return found


def raw_templates(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each node's ``template`` as stored in the document, by node id.

    The parsed field model has no ``password`` flag; secrets are found here.
    """
    templates: dict[str, dict[str, Any]] = {}
    data = document.get("data")
    nodes = data.get("nodes") if isinstance(data, dict) else None
    for raw in nodes if isinstance(nodes, list) else ():
        body = raw.get("data") if isinstance(raw, dict) else None
        node = body.get("node") if isinstance(body, dict) else None
        template = node.get("template") if isinstance(node, dict) else None
        if isinstance(template, dict) and isinstance(raw.get("id"), str):
            templates[raw["id"]] = template
    return templates


def build_snippets(
    graph: Graph,
    record: FlowRecord,
    base_url: str,
    *,
    input_value: str = DEFAULT_INPUT,
) -> Snippets:
    input_type, output_type = run_types(graph)
    tweaks = tweakable_fields(graph, input_type)
    ref = record.endpoint_name or record.id
    url = f"{base_url.rstrip('/')}/api/v1/run/{quote(ref, safe='')}"
    payload: dict[str, Any] = {
        "input_value": input_value,
        "input_type": input_type,
        "output_type": output_type,
    }
    if tweaks:
        payload["tweaks"] = tweaks
    text_path = _text_path(graph, output_type)
    return Snippets(
        flow_id=record.id,
        url=url,
        input_type=input_type,
        output_type=output_type,
        tweaks=tweaks,
        curl=curl_snippet(url, payload),
        python_requests=requests_snippet(url, payload, text_path),
        python_client=client_snippet(base_url, ref, payload),
        javascript=javascript_snippet(url, payload, text_path),
    )


def _text_path(graph: Graph, output_type: str) -> list[str | int] | None:
    """Where the answer's text is in the result, when the first output is a message."""
    for node_id in graph.output_nodes:
        if output_type != "any" and output_type not in node_id.lower():
            continue
        node = graph.nodes[node_id]
        first = node.component.outputs[0] if node.component.outputs else None
        if first is None or "Message" not in first.types:
            return None
        return ["outputs", 0, "outputs", 0, "results", first.name, "text"]
    return None


def curl_snippet(url: str, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, indent=2, ensure_ascii=False)
    return "\n".join(
        [
            "curl --fail-with-body --request POST \\",
            f"  --url {shlex.quote(url + '?stream=false')} \\",
            "  --header 'Content-Type: application/json' \\",
            f'  --header "x-api-key: ${API_KEY_VARIABLE}" \\',
            f"  --data {shlex.quote(body)}",
        ]
    )


def requests_snippet(url: str, payload: dict[str, Any], text_path: list[str | int] | None) -> str:
    lines = [
        *(["import json"] if text_path is None else []),
        "import os",
        "import sys",
        "",
        "import requests",
        "",
        f"url = {py_str(url)}",
        "",
        f"payload = {python_literal(payload)}",
        "",
        f'headers = {{"x-api-key": os.environ.get("{API_KEY_VARIABLE}", "")}}',
        "",
        "response = requests.post(url, json=payload, headers=headers, timeout=300)",
        "if response.status_code != 200:",
        '    sys.exit(f"Error {response.status_code}: {response.text}")',
        "result = response.json()",
    ]
    if text_path is None:
        lines.append("print(json.dumps(result, indent=2))")
    else:
        lines.append("print(result" + "".join(f"[{json.dumps(step)}]" for step in text_path) + ")")
    return "\n".join(lines)


def client_snippet(base_url: str, ref: str, payload: dict[str, Any]) -> str:
    args = [py_str(ref), py_str(payload["input_value"])]
    if "tweaks" in payload:
        args.append("tweaks=tweaks")
    args += [
        f"input_type={py_str(payload['input_type'])}",
        f"output_type={py_str(payload['output_type'])}",
    ]
    lines = ["import os", "", "from flowserve.client import Client", ""]
    if "tweaks" in payload:
        lines += [f"tweaks = {python_literal(payload['tweaks'])}", ""]
    lines += [
        f'api_key = os.environ.get("{API_KEY_VARIABLE}")',
        f"with Client({py_str(base_url.rstrip('/'))}, api_key=api_key) as client:",
        "    result = client.run_flow(",
        *(f"        {arg}," for arg in args),
        "    )",
        "    print(result.output)",
    ]
    return "\n".join(lines)


def javascript_snippet(url: str, payload: dict[str, Any], text_path: list[str | int] | None) -> str:
    accessor = (
        "result" + "".join(f"[{json.dumps(step)}]" for step in text_path)
        if text_path
        else "JSON.stringify(result, null, 2)"
    )
    body = json.dumps(payload, indent=2, ensure_ascii=False)
    return "\n".join(
        [
            f"// Node 18+ or a browser. Set {API_KEY_VARIABLE} in the environment (Node),",
            "// or put your API key here.",
            f'const apiKey = globalThis.process?.env?.{API_KEY_VARIABLE} ?? "";',
            "",
            f"const payload = {body};",
            "",
            f"fetch({json.dumps(url + '?stream=false')}, {{",
            '  method: "POST",',
            '  headers: { "Content-Type": "application/json", "x-api-key": apiKey },',
            "  body: JSON.stringify(payload),",
            "})",
            "  .then(async (response) => {",
            "    const result = await response.json();",
            "    if (!response.ok) {",
            "      throw new Error(`Error ${response.status}: ${result.detail}`);",
            "    }",
            f"    console.log({accessor});",
            "  })",
            "  .catch((error) => {",
            "    console.error(error.message);",
            "    if (globalThis.process) process.exitCode = 1;",
            "  });",
        ]
    )


def python_literal(value: Any, indent: int = 0) -> str:
    """``value`` (JSON data) as Python source, indented like ``json.dumps(indent=4)``.

    Short lists of scalars stay on one line.
    """
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{pad}{py_str(str(k))}: {python_literal(v, indent + 4)}," for k, v in value.items()
        ]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        if all(_is_scalar(v) for v in value):
            inline = "[" + ", ".join(python_literal(v) for v in value) + "]"
            if len(inline) <= _INLINE_WIDTH:
                return inline
        items = [f"{pad}{python_literal(v, indent + 4)}," for v in value]
        return "[\n" + "\n".join(items) + "\n" + " " * indent + "]"
    if isinstance(value, str):
        return py_str(value)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return py_str(str(value))


_INLINE_WIDTH = 72


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def py_str(text: str) -> str:
    """A double-quoted Python string literal (JSON's escapes are all valid Python)."""
    return json.dumps(text, ensure_ascii=False)
