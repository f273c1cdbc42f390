"""WriteCombiner: concurrent writes go out together, each caller still sees its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from flowserve.store.combine import WriteCombiner


class Recorder:
    def __init__(self, *, fail_on: str | None = None, delay: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.fail_on = fail_on
        self.delay = delay

    async def flush(self, items: Sequence[str]) -> None:
        self.batches.append(list(items))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_on in items:
            raise ConnectionError(f"cannot write {self.fail_on}")


async def test_writes_submitted_together_are_flushed_in_one_batch() -> None:
    recorder = Recorder()
    combiner = WriteCombiner(recorder.flush)
    await asyncio.gather(*(combiner.submit(f"m{i}") for i in range(5)))
    assert recorder.batches == [["m0", "m1", "m2", "m3", "m4"]]


async def test_writes_arriving_during_a_flush_go_in_the_next_batch_in_order() -> None:
    recorder = Recorder(delay=0.01)
    combiner = WriteCombiner(recorder.flush)
    first = asyncio.create_task(combiner.submit("a"))
    await asyncio.sleep(0.005)  # "a" is being written
    await asyncio.gather(first, combiner.submit("b"), combiner.submit("c"))
    assert recorder.batches == [["a"], ["b", "c"]]


async def test_submit_returns_only_after_its_batch_is_written() -> None:
    recorder = Recorder(delay=0.01)
    combiner = WriteCombiner(recorder.flush)
    await combiner.submit("x")
    assert recorder.batches == [["x"]]


async def test_a_failed_batch_raises_in_every_caller_of_that_batch_only() -> None:
    recorder = Recorder(fail_on="bad", delay=0.01)
    combiner = WriteCombiner(recorder.flush)
    results = await asyncio.gather(
        combiner.submit("ok1"), combiner.submit("bad"), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    await combiner.submit("ok2")  # the combiner keeps working after a failure
    assert recorder.batches[-1] == ["ok2"]


async def test_batches_are_capped_at_max_batch() -> None:
    recorder = Recorder()
    combiner = WriteCombiner(recorder.flush, max_batch=2)
    await asyncio.gather(*(combiner.submit(str(i)) for i in range(5)))
    assert recorder.batches == [["0", "1"], ["2", "3"], ["4"]]


async def test_a_cancelled_caller_still_has_its_item_written() -> None:
    recorder = Recorder(delay=0.01)
    combiner = WriteCombiner(recorder.flush)
    task = asyncio.create_task(combiner.submit("kept"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await combiner.aclose()
    assert recorder.batches == [["kept"]]


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        WriteCombiner(Recorder().flush, max_batch=0)
