"""AssemblyAI Transcriber: start a transcript of an audio URL, poll until it is done.

AssemblyAI's REST API (``POST /v2/transcript``, then ``GET /v2/transcript/{id}``)
at the operator's ``FLOWSERVE_ASSEMBLYAI_URL`` (the public API by default),
through the outbound SSRF guard over the shared client. Polling is bounded by
the node's ``poll_timeout`` and the operator's ``FLOWSERVE_ASSEMBLYAI_TIMEOUT``,
whichever is shorter; AssemblyAI fetches the audio itself, so the audio URL
must be one it can reach.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec

from flowserve.components.llm import secret_param
from flowserve.components.outbound import Allowlist, guarded_request, http_client
from flowserve.components.search import service_url
from flowserve.engine.component import Component, Input, NodeContext, Output
from flowserve.engine.types import Message, to_text
from flowserve.errors import Invalid, UpstreamError

ASSEMBLYAI_SERVICE = "assemblyai_url"
POLL_INTERVAL_SERVICE = "assemblyai_poll_interval"
TIMEOUT_SERVICE = "assemblyai_timeout"
DEFAULT_ASSEMBLYAI_URL = "https://api.assemblyai.com"
KEY_VARIABLE = "ASSEMBLYAI_API_KEY"


class _Transcript(msgspec.Struct):
    id: str
    status: str = ""
    text: str | None = None
    error: str | None = None


_decode_transcript = msgspec.json.Decoder(_Transcript).decode


def _number(ctx: NodeContext, service: str, default: float) -> float:
    value = ctx.run.services.get(service)
    return float(value) if isinstance(value, int | float) and value > 0 else default


class AssemblyAITranscriber(Component):
    type_name = "AssemblyAITranscriber"
    display_name = "AssemblyAI Transcriber"
    description = "Transcribe an audio file with AssemblyAI via its current REST API."
    category = "assemblyai"
    icon = "mic"
    inputs = (
        Input("api_key", "secret", "", "AssemblyAI API Key", "Your AssemblyAI API key.", True),
        Input(
            "audio_url",
            "str",
            "",
            "Audio File URL",
            "Public URL of the audio file to transcribe.",
            required=True,
            input_types=("Message",),
        ),
        Input("speaker_labels", "bool", False, "Speaker Labels", advanced=True),
        Input(
            "language_code",
            "str",
            "",
            "Language Code",
            "e.g. en, pt. Leave empty for automatic detection.",
            advanced=True,
            input_types=("Message",),
        ),
        Input("poll_timeout", "int", 300, "Poll Timeout (s)", advanced=True),
    )
    outputs = (Output("transcript", ("Message",), "Transcript", "transcribe"),)

    async def run(self, ctx: NodeContext, params: Mapping[str, Any]) -> dict[str, Any]:
        key = secret_param(self, ctx, params, "api_key") or ctx.run.variables.get(KEY_VARIABLE)
        if not key:
            raise Invalid(
                f"AssemblyAI API Key is required: set 'api_key' or the global variable "
                f"{KEY_VARIABLE}"
            )
        audio_url = to_text(params.get("audio_url")).strip()
        if not audio_url.startswith(("http://", "https://")):
            raise Invalid("an Audio File URL (http or https) is required: set 'audio_url'")
        body: dict[str, Any] = {"audio_url": audio_url}
        if params.get("speaker_labels"):
            body["speaker_labels"] = True
        language = to_text(params.get("language_code")).strip()
        if language:
            body["language_code"] = language
        base = service_url(ctx, ASSEMBLYAI_SERVICE, DEFAULT_ASSEMBLYAI_URL).rstrip("/")
        headers = {"authorization": key, "content-type": "application/json"}
        async with http_client(ctx) as client:
            started = await self._call(
                ctx, client, "POST", f"{base}/v2/transcript", headers, msgspec.json.encode(body)
            )
            transcript = await self._poll(ctx, client, params, base, headers, started)
        return {
            "transcript": Message(
                text=transcript.text or "", session_id=ctx.run.session_id, flow_id=ctx.run.flow_id
            )
        }

    async def _poll(
        self,
        ctx: NodeContext,
        client: httpx.AsyncClient,
        params: Mapping[str, Any],
        base: str,
        headers: Mapping[str, str],
        transcript: _Transcript,
    ) -> _Transcript:
        try:
            asked = float(params.get("poll_timeout") or 300)
        except (TypeError, ValueError) as exc:
            raise Invalid("poll_timeout must be a number of seconds") from exc
        limit = min(max(asked, 1.0), _number(ctx, TIMEOUT_SERVICE, 600.0))
        interval = _number(ctx, POLL_INTERVAL_SERVICE, 3.0)
        deadline = time.monotonic() + limit
        url = f"{base}/v2/transcript/{transcript.id}"
        while True:
            if transcript.status == "completed":
                return transcript
            if transcript.status == "error":
                raise UpstreamError(
                    f"AssemblyAI transcription error: {transcript.error or 'failed'}"
                )
            if time.monotonic() + interval > deadline:
                raise UpstreamError(
                    f"the transcription did not finish within {limit:g} s "
                    f"(last status: {transcript.status or 'unknown'})"
                )
            await asyncio.sleep(interval)
            transcript = await self._call(ctx, client, "GET", url, headers, None)

    async def _call(
        self,
        ctx: NodeContext,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
    ) -> _Transcript:
        response, body = await guarded_request(
            client,
            method,
            url,
            allow=Allowlist.of(ctx),
            headers=headers,
            content=content,
            time_limit=30.0,
            follow_redirects=False,
            max_bytes=20 * 1024 * 1024,
        )
        if response.status_code in (401, 403):
            raise UpstreamError(f"AssemblyAI refused the API key (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise UpstreamError(f"AssemblyAI answered HTTP {response.status_code}")
        try:
            return _decode_transcript(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamError(f"AssemblyAI answered something unexpected: {exc}") from exc
