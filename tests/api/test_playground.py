"""The shareable playground of PUBLIC flows: the page over plain HTTP, and a real headless
Chromium chatting with a flow on the fake LLM provider, the reply streamed into the page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowserve.app import create_app
from flowserve.settings import Settings
from tests.api.authed import auth_settings, authed_app
from tests.chromium import Page, chromium_page
from tests.conftest import FLOWS, LiveServer
from tests.fakes.fixtures import _openai_server, fake_openai  # noqa: F401 - by name
from tests.fakes.openai_server import FakeOpenAI

MEMORY_CHATBOT = "ea80d83d-67d1-4d89-84a9-014b6b97c8a7"
PUBLIC_HELLO = "7d0c1f8e-5b0e-4a52-9d35-6a8f3e2b1c40"
PAGES = ("/playground/{}", "/public_flow/{}")


def write_public_chatbot(flows_dir: Path) -> None:
    """Langflow's Memory Chatbot starter, PUBLIC, its agent on an OpenAI model: the key and
    endpoint come from the environment (OPENAI_API_KEY / OPENAI_BASE_URL), as an operator
    would configure them, since a playground visitor sends no provider headers."""
    document = json.loads((FLOWS / "memory-chatbot.json").read_text())
    document.update(access_type="PUBLIC", name="Support <bot>", description="Ask me & see")
    for node in document["data"]["nodes"]:
        if node["id"] == "Agent-AlLub":
            model = node["data"]["node"]["template"]["model"]
            model["value"] = [{"name": "gpt-4o-mini", "provider": "OpenAI"}]
    (flows_dir / "memory-chatbot.json").write_text(json.dumps(document))


def write_public_hello(flows_dir: Path) -> None:
    document = json.loads((FLOWS / "hello-world.json").read_text())
    document.update(
        id=PUBLIC_HELLO, name="public-hello", endpoint_name="public-hello", access_type="PUBLIC"
    )
    (flows_dir / "public-hello.json").write_text(json.dumps(document))


def hello_id() -> str:
    return str(json.loads((FLOWS / "hello-world.json").read_text())["id"])


@pytest.fixture
def provider_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> FakeOpenAI:
    fake: FakeOpenAI = request.getfixturevalue("fake_openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    return fake


# -- the page over HTTP -----------------------------------------------------------------


async def test_page_is_served_for_a_public_flow_with_a_strict_policy(
    flows_dir: Path, settings: Settings
) -> None:
    write_public_chatbot(flows_dir)
    async with authed_app(settings) as app:
        for path in PAGES:
            page = await app.client.get(path.format(MEMORY_CHATBOT))
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
            policy = page.headers["content-security-policy"]
            assert "default-src 'none'" in policy
            assert "script-src 'self'" in policy
            assert "unsafe-inline" not in policy
            assert page.headers["x-content-type-options"] == "nosniff"
            # The flow's name is text in the page, never markup.
            assert "Support &lt;bot&gt;" in page.text
            assert "<bot>" not in page.text
            assert "Ask me &amp; see" in page.text
            # No inline script and nothing from elsewhere: every script and style is ours.
            assert re.findall(r"<script[^>]*>([^<]*)</script>", page.text) == [""]
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            ours = [s for s in sources if s != "data:,"]  # an empty icon: no favicon request
            assert ours
            assert all(s.startswith("/playground/assets/") for s in ours)
            assert f'data-run-url="/api/v1/run/{MEMORY_CHATBOT}?stream=true"' in page.text


async def test_assets_are_served_from_the_package(settings: Settings) -> None:
    async with authed_app(settings) as app:
        script = await app.client.get("/playground/assets/playground.js")
        style = await app.client.get("/playground/assets/playground.css")
        missing = await app.client.get("/playground/assets/other.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "textContent" in script.text
    assert "innerHTML" not in script.text
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert "@import" not in style.text
    assert "url(" not in style.text
    assert missing.status_code == 404


async def test_private_and_unknown_flows_get_the_same_404(
    flows_dir: Path, settings: Settings
) -> None:
    async with authed_app(settings) as app:
        for path in PAGES:
            private = await app.client.get(path.format(hello_id()))
            unknown = await app.client.get(path.format("no-such-flow"))
            assert private.status_code == unknown.status_code == 404
            assert private.json()["code"] == unknown.json()["code"] == "flow_not_found"
            assert private.json()["detail"] == f"Flow identifier {hello_id()} not found"


async def test_page_and_404_on_every_backend(flows_dir: Path, backend_settings: Settings) -> None:
    write_public_hello(flows_dir)
    async with authed_app(backend_settings.replace(auth="on", api_key="fs_" + "b" * 43)) as app:
        public = await app.client.get(f"/public_flow/{PUBLIC_HELLO}")
        by_name = await app.client.get("/playground/public-hello")
        private = await app.client.get(f"/public_flow/{hello_id()}")
    assert public.status_code == 200
    assert "<h1>public-hello</h1>" in public.text
    # By endpoint name too; the page runs the flow by its id.
    assert by_name.status_code == 200
    assert f'data-run-url="/api/v1/run/{PUBLIC_HELLO}?stream=true"' in by_name.text
    assert private.status_code == 404


async def test_private_flow_is_404_even_with_auth_off(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/playground/{hello_id()}")
    assert response.status_code == 404
    assert response.json()["code"] == "flow_not_found"


async def test_page_is_rate_limited_per_client_address_like_public_runs(flows_dir: Path) -> None:
    write_public_hello(flows_dir)
    async with authed_app(auth_settings(flows_dir, rate_limit_per_ip=2)) as app:
        assert (await app.client.get(f"/playground/{PUBLIC_HELLO}")).status_code == 200
        run = await app.client.post(f"/api/v1/run/{PUBLIC_HELLO}", json={"input_value": "x"})
        assert run.status_code == 200
        limited = await app.client.get(f"/playground/{PUBLIC_HELLO}")
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


async def test_links_follow_the_public_url_behind_a_proxy(
    flows_dir: Path, settings: Settings
) -> None:
    write_public_hello(flows_dir)
    proxied = settings.replace(public_url="https://flows.example.com/team/")
    async with authed_app(proxied) as app:
        page = await app.client.get(f"/playground/{PUBLIC_HELLO}")
    assert page.status_code == 200
    assert f'data-run-url="/team/api/v1/run/{PUBLIC_HELLO}?stream=true"' in page.text
    assert 'src="/team/playground/assets/playground.js?v=' in page.text


async def test_links_follow_the_root_path(flows_dir: Path, settings: Settings) -> None:
    write_public_hello(flows_dir)
    async with authed_app(settings) as app:
        transport = httpx.ASGITransport(app=app.app, root_path="/flowserve")
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as http:
            page = await http.get(f"/flowserve/playground/{PUBLIC_HELLO}")
    assert page.status_code == 200
    assert f'data-run-url="/flowserve/api/v1/run/{PUBLIC_HELLO}?stream=true"' in page.text


# -- a real browser ---------------------------------------------------------------------

BOT_TEXTS = "Array.from(document.querySelectorAll('.message.bot'), e => e.textContent)"
ERRORS = "Array.from(document.querySelectorAll('.message.error'), e => e.textContent)"
# Records every text the newest bot bubble shows, as the page changes it.
RECORD_STREAM = """(() => {
  window.__seen = [];
  new MutationObserver(() => {
    const bots = document.querySelectorAll('.message.bot');
    const last = bots[bots.length - 1];
    if (last) window.__seen.push(last.textContent);
  }).observe(document.getElementById('messages'),
             {childList: true, subtree: true, characterData: true});
})()"""


async def send_message(page: Page, text: str) -> None:
    await page.type_text("#input", text)
    await page.press_enter()


async def test_chromium_chats_with_a_public_flow_and_sees_the_reply_stream_in(
    live_server: Any, flows_dir: Path, provider_env: FakeOpenAI
) -> None:
    write_public_chatbot(flows_dir)
    # Tokens a little apart, so the browser receives them in separate reads.
    provider_env.token_latency = 0.05
    async with (
        live_server(auth="on", api_key="fs_test_admin_key", outbound_allowlist="127.0.0.1") as srv,
        chromium_page() as page,
    ):
        await page.goto(f"{srv.url}/playground/{MEMORY_CHATBOT}")
        await page.wait_for("document.getElementById('playground').dataset.ready === 'true'")
        assert await page.evaluate("document.querySelector('h1').textContent") == "Support <bot>"
        await page.evaluate(RECORD_STREAM)

        await send_message(page, "My name is <b>Ada</b>")
        await page.wait_for(f"{BOT_TEXTS}.includes('Echo: My name is <b>Ada</b>')")
        await page.wait_for("document.getElementById('send').disabled === false")
        seen = await page.evaluate("window.__seen")
        # The reply grew token by token in the page before it was complete.
        partial = [s for s in seen if s and s != "Echo: My name is <b>Ada</b>"]
        assert partial, seen
        assert all("Echo: My name is <b>Ada</b>".startswith(s) for s in partial)
        # Model output is text: the <b> the model echoed made no element.
        assert await page.evaluate("document.querySelectorAll('#messages b').length") == 0

        # A second turn, sent with the button: the same session, so the flow remembers.
        await page.type_text("#input", "What is my name?")
        await page.click("#send")
        await page.wait_for(f"{BOT_TEXTS}.includes('Echo: What is my name?')")
        user_texts = await page.evaluate(
            "Array.from(document.querySelectorAll('.message.user'), e => e.textContent)"
        )
        assert user_texts == ["My name is <b>Ada</b>", "What is my name?"]
        assert await page.evaluate(ERRORS) == []
        assert page.exceptions == []
        assert not [line for line in page.console if "Content Security Policy" in line]

    second_call = provider_env.requests[-1]["messages"]
    remembered = [m["content"] for m in second_call if m["role"] == "user"]
    assert remembered == ["My name is <b>Ada</b>", "What is my name?"]
    assert all(h.get("authorization") == "Bearer sk-operator" for h in provider_env.headers)


async def test_chromium_keeps_the_conversation_across_a_reload_of_the_tab(
    live_server: Any, flows_dir: Path, provider_env: FakeOpenAI
) -> None:
    write_public_chatbot(flows_dir)
    async with (
        live_server(outbound_allowlist="127.0.0.1") as srv,
        chromium_page() as page,
    ):
        url = f"{srv.url}/public_flow/{MEMORY_CHATBOT}"
        await page.goto(url)
        await page.wait_for("document.getElementById('playground').dataset.ready === 'true'")
        await send_message(page, "first")
        await page.wait_for(f"{BOT_TEXTS}.includes('Echo: first')")
        await page.goto(url)
        await page.wait_for("document.getElementById('playground').dataset.ready === 'true'")
        assert await page.evaluate(BOT_TEXTS) == ["Echo: first"]
        await send_message(page, "second")
        await page.wait_for(f"{BOT_TEXTS}.includes('Echo: second')")
        # "New chat" starts another session: the flow no longer sees the earlier turns.
        await page.click("#new-chat")
        assert await page.evaluate(BOT_TEXTS) == []
        await send_message(page, "third")
        await page.wait_for(f"{BOT_TEXTS}.includes('Echo: third')")

    sessions = [
        [m["content"] for m in request["messages"] if m["role"] == "user"]
        for request in provider_env.requests
    ]
    assert sessions == [["first"], ["first", "second"], ["third"]]


async def test_chromium_shows_the_error_of_a_failed_run(
    live_server: Any, flows_dir: Path, provider_env: FakeOpenAI
) -> None:
    write_public_chatbot(flows_dir)
    provider_env.fail_statuses = [400]
    async with (
        live_server(outbound_allowlist="127.0.0.1") as srv,
        chromium_page() as page,
    ):
        await page.goto(f"{srv.url}/playground/{MEMORY_CHATBOT}")
        await page.wait_for("document.getElementById('playground').dataset.ready === 'true'")
        await send_message(page, "hello")
        errors = await page.wait_for(f"(() => {{ const e = {ERRORS}; return e.length && e; }})()")
        await page.wait_for("document.getElementById('send').disabled === false")
        assert "injected failure 400" in errors[0]
        assert await page.evaluate(BOT_TEXTS) == []


async def test_chromium_shows_when_the_visitor_is_rate_limited(flows_dir: Path) -> None:
    write_public_hello(flows_dir)
    settings = auth_settings(flows_dir, rate_limit_per_ip=2)
    async with LiveServer(create_app(settings)) as srv, chromium_page() as page:
        await page.goto(f"{srv.url}/playground/{PUBLIC_HELLO}")  # the page is one request
        await page.wait_for("document.getElementById('playground').dataset.ready === 'true'")
        await send_message(page, "one")  # the second
        await page.wait_for(f"{BOT_TEXTS}.includes('Hello, World!')")
        await page.wait_for("document.getElementById('send').disabled === false")
        await send_message(page, "two")  # over the limit
        errors = await page.wait_for(f"(() => {{ const e = {ERRORS}; return e.length && e; }})()")
    assert re.fullmatch(r"Too many messages: try again in \d+ s\.", errors[0]), errors
