"""Our own typed model of a Langflow flow, independent of Langflow's JSON layout.

``Flow`` is what the rest of flowserve sees: nodes with their template fields
and outputs, and edges from one node's named output to another node's field.
Note nodes are not part of it. The original document is kept (``raw``) so a
flow can be downloaded exactly as it was uploaded.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Field(msgspec.Struct, frozen=True):
    """One entry of a node's ``template``: a configurable field and its stored value."""

    name: str
    type: str
    value: Any
    load_from_db: bool = False
    is_list: bool = False
    required: bool = False
    show: bool = True
    advanced: bool = False
    display_name: str = ""
    input_types: tuple[str, ...] = ()


class Output(msgspec.Struct, frozen=True):
    name: str
    types: tuple[str, ...] = ()
    display_name: str = ""


class Node(msgspec.Struct, frozen=True):
    id: str
    type: str
    display_name: str
    fields: dict[str, Field]
    outputs: tuple[Output, ...] = ()
    # Langflow writes a tool description table on nodes used as agent tools.
    tools_metadata: tuple[dict[str, Any], ...] = ()


class Edge(msgspec.Struct, frozen=True):
    source: str
    source_output: str
    target: str
    target_field: str
    # A loop's feedback edge: it ends on the target's loop *output* handle (Langflow's
    # ``allows_loop``, e.g. Loop's ``item``), named by ``target_field``, not on a field.
    feedback: bool = False


class Flow(msgspec.Struct, frozen=True):
    id: str
    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    description: str = ""
    endpoint_name: str | None = None
    webhook: bool = False
    mcp_enabled: bool = False
    access_type: str = "PRIVATE"
    folder_id: str | None = None
    raw: dict[str, Any] = msgspec.field(default_factory=dict)

    def node(self, node_id: str) -> Node | None:
        for node in self.nodes:
            if node.id == node_id:
                return node
        return None
