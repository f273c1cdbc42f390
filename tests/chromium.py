"""A headless Chromium driven over its DevTools protocol, for the browser tests.

Debian's ``chromium`` (installed by tests/ensure_services.sh) runs with a fresh
profile and ``--remote-debugging-port=0``; the port it picked is read from the
``DevToolsActivePort`` file in the profile, and one page target is driven over
its websocket (the ``websockets`` package uvicorn[standard] brings). Only
loopback: the flags below turn off every background fetch Chromium would make.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import websockets

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
)
# Waiting for the browser or the page is bounded, not timed: these only stop a hang.
STARTUP_LIMIT = 30.0
WAIT_LIMIT = 20.0


class BrowserError(AssertionError):
    """The page did something the test did not expect (an exception, a timeout)."""


class Page:
    """One tab: send DevTools commands, evaluate script, collect console and CSP reports."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.console: list[str] = []
        self.exceptions: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            if "id" in message:
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                self._event(message.get("method", ""), message.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled":
            self.console.append(" ".join(str(a.get("value", "")) for a in params.get("args", ())))
        elif method == "Log.entryAdded":
            self.console.append(params.get("entry", {}).get("text", ""))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(
                details.get("exception", {}).get("description") or details.get("text", "")
            )

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        await self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, WAIT_LIMIT)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a script expression in the page (awaited when it is a promise)."""
        answer = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression!r} threw: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, limit: float = WAIT_LIMIT) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + limit
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > give_up:
                raise BrowserError(
                    f"still falsy after {limit:g} s: {expression}\n"
                    f"console: {self.console}\nexceptions: {self.exceptions}"
                )
            await asyncio.sleep(0.05)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def type_text(self, selector: str, text: str) -> None:
        """Focus the element and type ``text`` as keyboard input would."""
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def press_enter(self) -> None:
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
        await self.send("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        await self.send("Input.dispatchKeyEvent", type="keyUp", **key)

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1
            )

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self._ws.close()


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    """A fresh headless Chromium with one blank page, closed (and its profile removed) after."""
    profile = Path(tempfile.mkdtemp(prefix="flowserve-chromium-"))
    # A file, not a pipe: nobody reads stderr while the browser runs, and a full pipe
    # would stall it.
    log = (profile / "stderr.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
    )
    try:
        port = await _devtools_port(profile, process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            targets = (await http.get("/json/list")).json()
        page_target = next(t for t in targets if t.get("type") == "page")
        ws = await websockets.connect(page_target["webSocketDebuggerUrl"], max_size=None)
        page = Page(ws)
        try:
            for domain in ("Page", "Runtime", "Log"):
                await page.send(f"{domain}.enable")
            yield page
        finally:
            await page.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    marker = profile / "DevToolsActivePort"
    loop = asyncio.get_running_loop()
    give_up = loop.time() + STARTUP_LIMIT
    while True:
        if marker.exists():
            first = marker.read_text().split("\n", 1)[0].strip()
            if first.isdigit():
                return int(first)
        if process.returncode is not None:
            error = (profile / "stderr.log").read_text(errors="replace")[-2000:]
            raise BrowserError(f"chromium exited with {process.returncode}: {error}")
        if loop.time() > give_up:
            raise BrowserError(f"chromium did not open its DevTools port in {STARTUP_LIMIT:g} s")
        await asyncio.sleep(0.05)
