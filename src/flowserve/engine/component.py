"""What a component is to the engine: declared inputs and outputs, and a ``run``.

A component class is chosen by a node's ``data.type``. The engine makes one
instance per node when it compiles a flow (so per-node preparation happens
once), then calls ``run`` for every execution with a ``NodeContext`` and the
node's parameters: template defaults, overlaid with tweaks, overlaid with the
values arriving on edges. ``run`` returns a value for each output name.
Components never see HTTP or a store backend: everything they need is on the
context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from flowserve.engine.types import Message, Source, TokenUsage, new_id, now_timestamp
from flowserve.errors import Invalid
from flowserve.flowfile.model import Node

Kind = Literal[
    "str", "int", "float", "bool", "dict", "list", "table", "any", "secret", "model", "message"
]


@dataclass(frozen=True, slots=True)
class Input:
    """A field a component reads. ``kind`` decides how stored and tweaked values convert."""

    name: str
    kind: Kind = "str"
    default: Any = None
    display_name: str = ""
    info: str = ""
    required: bool = False
    advanced: bool = False
    is_list: bool = False
    input_types: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    multiline: bool = False


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    types: tuple[str, ...]
    display_name: str = ""
    method: str = ""
    # A loop output (Langflow's ``allows_loop``): it hands the loop body one item per
    # iteration, and the body's last node feeds its result back into this handle.
    allows_loop: bool = False


class SessionMemory(Protocol):
    """The conversation of the current session, bound to one flow and session id."""

    async def append(self, message: Message) -> None: ...

    async def history(
        self,
        *,
        limit: int,
        sender: str | None = None,
        order: str = "ASC",
        all_sessions: bool = False,
    ) -> list[Message]:
        """The last ``limit`` messages (oldest first for ASC); ``all_sessions``
        widens the search to every session of the flow."""
        ...


class EventSink(Protocol):
    """Receives run events (``add_message``, ``token``, ``log``) as they happen."""

    def emit(self, event: str, data: Any) -> None: ...


class NullSink:
    def emit(self, event: str, data: Any) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RunOwner:
    """Who a run acts for: the submitting key's id (its files' owner), and whether the
    key is an admin one (which may read every owner's files)."""

    id: str
    admin: bool = False


class RunFiles(Protocol):
    """The file store as components see it (``services["files"]``): reads checked
    against the run's owner, writes made as that owner. Never a filesystem path."""

    async def read(self, path: str, *, reader: RunOwner | None, trusted: bool) -> tuple[str, bytes]:
        """The name and bytes of the stored file at ``path``, when ``reader`` may read it
        (its owner, an admin) or ``trusted`` (the path is in the flow's saved
        definition); ``FileNotFound`` otherwise, alike whether or not it exists."""
        ...

    async def save(self, name: str, content: bytes, *, owner: RunOwner) -> str:
        """Store ``content`` as a new file of ``owner`` named ``name``; its path."""
        ...


@dataclass(slots=True)
class RunContext:
    """What one execution of a flow shares among its components."""

    flow_id: str
    flow_name: str
    session_id: str
    memory: SessionMemory
    sink: EventSink = field(default_factory=NullSink)
    run_id: str = field(default_factory=new_id)
    # Global variables: the process environment overlaid with the request's
    # X-LANGFLOW-GLOBAL-VAR-<NAME> headers. load_from_db fields resolve here, and
    # components read provider keys and base URLs (OPENAI_API_KEY, ...) from it.
    variables: Mapping[str, str] = field(default_factory=dict)
    # Shared clients, by name: "http" is an httpx.AsyncClient for outbound calls.
    services: Mapping[str, Any] = field(default_factory=dict)
    streaming: bool = False
    usage: TokenUsage | None = None
    # Called with each finished node's ``NodeRun`` (outgoing event webhooks listen here).
    node_done: Callable[[Any], None] | None = None
    # Who submitted the run (None: nobody known, e.g. a public flow's visitor): the
    # files it may read and the owner of the files it saves.
    owner: RunOwner | None = None
    # How many items one execution of a loop component may iterate over.
    max_loop_iterations: int = 1000

    def add_usage(self, usage: TokenUsage | None) -> None:
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage + usage


@dataclass(slots=True)
class NodeContext:
    """The run context seen from one node, plus where its edge inputs came from."""

    run: RunContext
    node_id: str
    display_name: str
    sources: Mapping[str, tuple[str, str]]
    wanted: frozenset[str]
    sent: list[Message] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)

    def new_message(
        self,
        text: str,
        *,
        sender: str,
        sender_name: str,
        session_id: str = "",
        source_field: str = "input_value",
    ) -> Message:
        origin = self.sources.get(source_field)
        source = (
            Source(id=origin[0], display_name=origin[1], source=origin[1])
            if origin
            else Source(id=self.node_id, display_name=self.display_name, source=self.display_name)
        )
        return Message(
            text=text,
            sender=sender,
            sender_name=sender_name,
            session_id=session_id or self.run.session_id,
            flow_id=self.run.flow_id,
            run_id=self.run.run_id,
            id=new_id(),
            timestamp=now_timestamp(),
            source=source,
        )

    def log(self, message: Any, name: str | None = None) -> None:
        """Langflow's ``Component.log``: an entry in this node's result ``logs`` (under
        ``name``, else "Log N"), announced to a streaming client as a ``log`` event."""
        entry = {
            "name": name or f"Log {len(self.logs) + 1}",
            "message": message,
            "type": _log_type(message),
        }
        self.logs.append(entry)
        self.run.sink.emit("log", {**entry, "component_id": self.node_id})

    async def send_message(self, message: Message, *, store: bool) -> None:
        """Record a chat message as this node's result, store it if asked, announce it."""
        self.sent.append(message)
        if store and message.session_id:
            await self.run.memory.append(message)
        self.run.sink.emit("add_message", message)


class Component:
    """Base class of every component. Subclasses set the ClassVars and implement ``run``."""

    type_name: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str] = ""
    category: ClassVar[str] = "other"
    icon: ClassVar[str] = ""
    inputs: ClassVar[tuple[Input, ...]] = ()
    outputs: ClassVar[tuple[Output, ...]] = ()
    # "input" components receive the run's input_value; "output" ones are reported.
    role: ClassVar[Literal["input", "output"] | None] = None
    # Runs without waiting on anything slow (no model, network or database call): the
    # engine runs it inline instead of as a task beside other ready nodes. Only a
    # scheduling hint: a quick component that does wait merely runs alone meanwhile.
    quick: ClassVar[bool] = False

    def __init__(self, node: Node) -> None:
        self.node = node

    @classmethod
    def input_named(cls, name: str) -> Input | None:
        for spec in cls.inputs:
            if spec.name == name:
                return spec
        return None

    def accepts_field(self, name: str) -> bool:
        """Whether an edge or tweak may target ``name`` (beyond the node's template)."""
        return self.input_named(name) is not None

    def problems(self) -> list[str]:
        """Configuration problems found when compiling; each names what is wrong."""
        return []

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class LoopingComponent(Component):
    """A component with a loop output (``Output.allows_loop``), such as Langflow's Loop.

    The engine asks it once for the items, runs the loop body once per item (the
    item is the value of the loop output during that iteration), then asks it for
    its outputs given what the body fed back each time.
    """

    async def items(self, ctx: NodeContext, params: Mapping[str, Any]) -> list[Any]:
        raise NotImplementedError

    def finish(self, items: list[Any], results: list[Any]) -> dict[str, Any]:
        """The outputs once every item went through the body. ``results`` holds what
        the body fed back, in order, one per iteration whose feedback was active (a
        ConditionalRouter in the body can leave an item out)."""
        raise NotImplementedError


def _log_type(message: Any) -> str:
    # Langflow's artifact types for a logged value.
    if isinstance(message, str):
        return "text"
    if isinstance(message, dict):
        return "object"
    if isinstance(message, list | tuple):
        return "array"
    return "unknown"


def require(condition: bool, message: str) -> None:
    """Raise a 422 for configuration a component cannot run with."""
    if not condition:
        raise Invalid(message)
