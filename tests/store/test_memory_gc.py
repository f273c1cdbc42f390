"""The embedded message store keeps long sessions off the garbage collector's books."""

from __future__ import annotations

import gc

from flowserve.engine.types import Message
from flowserve.store.memory import MemoryMessageStore


async def test_stored_messages_are_not_tracked_by_the_garbage_collector() -> None:
    store = MemoryMessageStore()
    await store.append("f", "s", [Message(text="warm-up")], 60)
    gc.collect()
    before = len(gc.get_objects())
    for n in range(2000):
        await store.append("f", "s", [Message(text=f"message {n}", files=["a.png"])], 60)
    gc.collect()
    # Decoded, each message would be several tracked objects (struct, lists, source):
    # 2000 messages would add thousands. Encoded, they add none.
    assert len(gc.get_objects()) - before < 200

    # And they read back whole, oldest first; history decodes only the tail it returns.
    last = await store.history("f", "s", limit=3, ttl=60)
    assert [m.text for m in last] == ["message 1997", "message 1998", "message 1999"]
    assert last[0].files == ["a.png"]
    assert last[0].flow_id == "f"
    assert last[0].id
    assert len(await store.messages(flow_id="f", session_id="s")) == 2001
