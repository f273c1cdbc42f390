"""A fake AssemblyAI transcript API (``/v2/transcript``) on a real loopback port.

A transcript is "processing" for ``polls_before_done`` polls, then "completed"
with the text ``Transcript of <audio_url>``. Requests need the key in
``authorization``. ``mode``: "error" (the transcript fails), "never" (it never
finishes), "garbage" (answers that are not JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import ThreadedServer

KEY = "aai-test-key"


class FakeAssemblyAI:
    def __init__(self) -> None:
        self.polls_before_done = 2
        self.mode = "ok"
        self.started: list[dict[str, Any]] = []
        self.polls = 0
        self._audio: dict[str, str] = {}
        self.app = Starlette(
            routes=[
                Route("/v2/transcript", self.start_transcript, methods=["POST"]),
                Route("/v2/transcript/{tid}", self.poll, methods=["GET"]),
            ]
        )
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def start(self) -> FakeAssemblyAI:
        self._server = ThreadedServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def reset(self) -> None:
        self.polls_before_done = 2
        self.mode = "ok"
        self.started.clear()
        self.polls = 0
        self._audio.clear()

    def _refused(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != KEY:
            return JSONResponse({"error": "Authentication error, API token missing/invalid"}, 401)
        if self.mode == "garbage":
            return Response("<html>oops</html>", media_type="text/html")
        return None

    async def start_transcript(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        self.started.append(body)
        tid = f"t{len(self.started)}"
        self._audio[tid] = str(body.get("audio_url"))
        return JSONResponse({"id": tid, "status": "queued", "audio_url": body.get("audio_url")})

    async def poll(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        tid = request.path_params["tid"]
        if tid not in self._audio:
            return JSONResponse({"error": "Transcript not found"}, 404)
        self.polls += 1
        if self.mode == "error":
            return JSONResponse({"id": tid, "status": "error", "error": "audio unreadable"})
        if self.mode == "never" or self.polls < self.polls_before_done:
            return JSONResponse({"id": tid, "status": "processing"})
        text = f"Transcript of {self._audio[tid]}"
        return JSONResponse({"id": tid, "status": "completed", "text": text})


@pytest.fixture(scope="session")
def _assemblyai_server() -> Iterator[FakeAssemblyAI]:
    server = FakeAssemblyAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_assemblyai(_assemblyai_server: FakeAssemblyAI) -> Iterator[FakeAssemblyAI]:
    _assemblyai_server.reset()
    yield _assemblyai_server
    _assemblyai_server.reset()
