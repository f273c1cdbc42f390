"""How a run ended, as the runner reports it to observers (metrics, tracing).

Plain data with no dependencies, so the service layer does not import the
observers' libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowserve.engine.types import TokenUsage


@dataclass(frozen=True, slots=True)
class NodeTiming:
    """One component's share of a run (for latency histograms and trace spans)."""

    node_id: str
    component: str
    display_name: str
    offset: float  # seconds after the run started
    duration: float


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What the runner reports once a run has ended, however it ended."""

    flow_id: str
    flow_name: str
    run_id: str
    session_id: str
    status: str  # "success", or the error code that ended it
    started_at: float  # wall clock (time.time())
    duration: float
    usage: TokenUsage | None
    nodes: tuple[NodeTiming, ...] = ()
    streaming: bool = False
