"""How a run ended, as the runner reports it to observers (metrics, tracing).

Plain data with no dependencies, so the service layer does not import the
observers' libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowserve.engine.run import GraphRun
from flowserve.engine.types import TokenUsage


@dataclass(frozen=True, slots=True)
class NodeTiming:
    """One component's share of a run (for latency histograms and trace spans)."""

    node_id: str
    component: str
    display_name: str
    offset: float  # seconds after the run started
    duration: float


@dataclass(slots=True)
class RunOutcome:
    """What the runner reports once a run has ended, however it ended.

    Not frozen: a frozen dataclass pays for every field on each run; treat it as read-only.
    """

    flow_id: str
    flow_name: str
    run_id: str
    session_id: str
    status: str  # "success", or the error code that ended it
    started_at: float  # wall clock (time.time())
    duration: float
    usage: TokenUsage | None
    streaming: bool = False
    # The finished nodes (None when the run failed) and time.perf_counter() at the
    # start: observers derive what they need, nothing is built for them up front.
    graph_run: GraphRun | None = None
    origin: float = 0.0
    traceparent: str = ""

    def component_durations(self) -> list[tuple[str, float]]:
        """(component type, seconds) of every node that ran."""
        if self.graph_run is None:
            return []
        return [
            (done.node.type, done.duration)
            for done in self.graph_run.every_run()
            if not done.skipped
        ]

    def timings(self) -> list[NodeTiming]:
        """Every node that ran, placed on the run's timeline."""
        if self.graph_run is None:
            return []
        return [
            NodeTiming(
                node_id=done.node.id,
                component=done.node.type,
                display_name=done.node.display_name,
                offset=max(done.started - self.origin, 0.0),
                duration=done.duration,
            )
            for done in self.graph_run.every_run()
            if not done.skipped
        ]
