"""The graph engine: compile a flow once, run it many times with tweaks and inputs.

Knows nothing of HTTP or of store backends; components get what they need
through ``RunContext``.
"""

from flowserve.engine.component import (
    Component,
    EventSink,
    Input,
    NodeContext,
    Output,
    RunContext,
    RunFiles,
    RunOwner,
    SessionMemory,
)
from flowserve.engine.graph import CompiledNode, Graph, Registry, compile_flow
from flowserve.engine.run import INACTIVE, GraphRun, NodeRun, execute
from flowserve.engine.tweaks import build_overlay
from flowserve.engine.types import Data, Message, Source, TokenUsage

__all__ = [
    "INACTIVE",
    "CompiledNode",
    "Component",
    "Data",
    "EventSink",
    "Graph",
    "GraphRun",
    "Input",
    "Message",
    "NodeContext",
    "NodeRun",
    "Output",
    "Registry",
    "RunContext",
    "RunFiles",
    "RunOwner",
    "SessionMemory",
    "Source",
    "TokenUsage",
    "build_overlay",
    "compile_flow",
    "execute",
]
