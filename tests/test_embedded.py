"""flowserve.run_flow: a flow run in the caller's process, without a server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import flowserve
from flowserve.errors import InvalidFlow, InvalidTweaks
from tests.conftest import FLOWS

PROMPT_ECHO = FLOWS / "prompt-echo.json"


def test_run_flow_runs_a_flow_file_and_returns_the_answer() -> None:
    result = flowserve.run_flow(str(PROMPT_ECHO), input_value="what is 2+2?")
    assert result.output == "You are terse. Question: what is 2+2?"
    assert result.session_id == "3f1c2a9e-7b7d-4c1e-9a51-2d8f6b0c4e11"
    assert result.outputs[0]["outputs"][0]["component_id"] == "ChatOutput-yK0AU"
    assert result.metadata["run_id"]


def test_run_flow_applies_tweaks_and_accepts_bytes() -> None:
    result = flowserve.run_flow(
        PROMPT_ECHO.read_bytes(),
        input_value="x",
        tweaks={"Prompt-t2oaK": {"template": "Tweaked: {question}"}},
        session_id="s1",
    )
    assert result.output == "Tweaked: x"
    assert result.session_id == "s1"


def test_run_flow_reports_bad_tweaks_like_the_server() -> None:
    with pytest.raises(InvalidTweaks, match="no field 'nope'"):
        flowserve.run_flow(PROMPT_ECHO, "x", tweaks={"Prompt-t2oaK": {"nope": "y"}})


def test_a_missing_flow_file_is_an_invalid_flow(tmp_path: Path) -> None:
    with pytest.raises(InvalidFlow, match="cannot read flow file"):
        flowserve.run_flow(tmp_path / "absent.json", "x")


async def test_inside_an_event_loop_run_flow_points_to_arun_flow() -> None:
    with pytest.raises(RuntimeError, match="arun_flow"):
        flowserve.run_flow(PROMPT_ECHO, "x")
    results = await asyncio.gather(
        flowserve.arun_flow(PROMPT_ECHO, "a"), flowserve.arun_flow(PROMPT_ECHO, "b")
    )
    assert [r.output for r in results] == [
        "You are terse. Question: a",
        "You are terse. Question: b",
    ]
