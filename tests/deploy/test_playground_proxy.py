"""The playground as deployed under a prefix: Chromium -> nginx (strips /flowserve) ->
``flowserve serve`` with ``FLOWSERVE_ROOT_PATH=/flowserve``, auth on and no key in the
browser. The page's script, style and run calls must all carry the prefix again."""

from __future__ import annotations

import json
from pathlib import Path

from tests.chromium import chromium_page
from tests.deploy.processes import Nginx, Replica

FLOWS = Path(__file__).resolve().parents[1] / "fixtures" / "flows"
PUBLIC = "5b2f0e4c-7a1d-4c3e-8f6a-1b2c3d4e5f60"
BOT_TEXTS = "Array.from(document.querySelectorAll('.message.bot'), e => e.textContent)"


async def test_chromium_chats_through_nginx_under_a_prefix(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    document = json.loads((FLOWS / "prompt-echo.json").read_text())
    document.update(id=PUBLIC, name="prefixed", endpoint_name="prefixed", access_type="PUBLIC")
    (flows / "prefixed.json").write_text(json.dumps(document))
    replica = Replica(
        tmp_path,
        "playground",
        env={
            "FLOWSERVE_FLOWS_DIR": str(flows),
            "FLOWSERVE_ROOT_PATH": "/flowserve",
            "FLOWSERVE_AUTH": "on",
            "FLOWSERVE_API_KEY": "fs_" + "p" * 43,
        },
    )
    nginx: Nginx | None = None
    try:
        replica.wait_ready()
        # The config has two upstream slots: one replica fills both.
        nginx = Nginx(tmp_path, [replica.port, replica.port], prefix="/flowserve")
        async with chromium_page() as page:
            await page.goto(f"{nginx.url}/flowserve/public_flow/prefixed")
            await page.wait_for("document.getElementById('playground').dataset.ready === 'true'")
            await page.type_text("#input", "through the proxy")
            await page.press_enter()
            await page.wait_for(
                f"{BOT_TEXTS}.includes('You are terse. Question: through the proxy')"
            )
            errors = await page.evaluate("document.querySelectorAll('.message.error').length")
    finally:
        if nginx is not None:
            nginx.stop()
        replica.stop()
    assert errors == 0
    assert page.exceptions == []
    paths = [json.loads(line)["uri"] for line in nginx.access_log()]
    assert any(p.startswith("/flowserve/playground/assets/playground.js") for p in paths), paths
    assert f"/flowserve/api/v1/run/{PUBLIC}?stream=true" in paths, paths
