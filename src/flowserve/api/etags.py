"""Flow ETags and ``If-Match``: optimistic concurrency for PATCH and PUT of a flow.

A flow's ETag names one stored revision: ``"<version>.<microseconds of its last
write since the epoch>"`` (the time tells a flow created again, whose versions
start over, from the one deleted). It is strong: the same revision is always the
same document. A write with ``If-Match`` happens only while the flow is still at
a listed revision (checked by the store's UPDATE itself), else 412; ``*`` asks
only that the flow exist. Without ``If-Match`` the last writer wins, as in Langflow.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from starlette.requests import Request

from flowserve.catalog import FlowCatalog
from flowserve.errors import FlowChanged
from flowserve.store.base import FlowRecord, FlowRevision

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Versions fit PostgreSQL's integer; times fit datetime (year 9999).
_TAG = re.compile(r'^"(\d{1,9})\.(\d{1,17})"$')
# More tags than anyone holds for one flow; each costs a write attempt.
MAX_TAGS = 16

IfMatch = Literal["*"] | list[FlowRevision]


def revision(record: FlowRecord) -> FlowRevision:
    return FlowRevision(record.version, record.updated_at or _EPOCH)


def etag(record: FlowRecord) -> str:
    current = revision(record)
    micros = (current.updated_at - _EPOCH) // _MICROSECOND
    return f'"{current.version}.{micros}"'


def etag_header(record: FlowRecord) -> dict[str, str]:
    return {"ETag": etag(record)}


def if_match(request: Request) -> IfMatch | None:
    """The revisions ``If-Match`` accepts; ``"*"`` for any; None without the header.

    Weak tags (``W/"..."``) and tags that are not ours never match (If-Match compares
    strongly), so a header made only of those gets a 412, not a silent write."""
    values = request.headers.getlist("if-match")
    if not values:
        return None
    tags = [t.strip() for value in values for t in value.split(",") if t.strip()]
    if "*" in tags:
        return "*"
    found: list[FlowRevision] = []
    for tag in tags[:MAX_TAGS]:
        match = _TAG.match(tag)
        if match is None:
            continue
        try:
            moment = _EPOCH + int(match.group(2)) * _MICROSECOND
        except OverflowError:
            continue
        found.append(FlowRevision(int(match.group(1)), moment))
    return found


async def replace_if_match(
    catalog: FlowCatalog, record: FlowRecord, condition: IfMatch, current: FlowRecord | None
) -> FlowRecord:
    """``record`` written only while the stored flow is at a revision ``condition`` names;
    a PATCH (``current``: the flow its change was merged into) only at that one."""
    revisions = None if condition == "*" else condition
    if current is not None:
        seen = revision(current)
        revisions = [seen] if revisions is None or seen in revisions else []
    stored = await catalog.replace(record, revisions)
    if stored is not None:
        return stored
    now = await catalog.flows.get(record.id)
    if now is None:
        raise FlowChanged(f"Flow {record.id} does not exist, and If-Match needs it to")
    raise FlowChanged(
        f"Flow {now.id} has changed since the version If-Match names (its current ETag is"
        " in the ETag header): read it again and reapply your change",
        headers=etag_header(now),
    )
