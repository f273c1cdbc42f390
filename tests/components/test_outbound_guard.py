"""The SSRF guard: no private, loopback or link-local targets unless allowlisted."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest

from flowserve.components import outbound
from flowserve.components.outbound import (
    ALLOWLIST_SETTING,
    Allowlist,
    BlockedURL,
    check_url,
    guarded_request,
)
from flowserve.errors import Invalid, UpstreamError
from tests.fakes.server import ThreadedServer


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://127.1.2.3/",
        "http://10.0.0.1/",
        "http://10.255.255.254/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/",
        "http://[::ffff:127.0.0.1]/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://localhost:8080/",
        "http://LOCALHOST/",
    ],
)
async def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(BlockedURL, match=ALLOWLIST_SETTING):
        await check_url(url, Allowlist.parse(None))


async def test_public_address_is_allowed() -> None:
    await check_url(
        "http://93.184.215.14/", Allowlist.parse(None)
    )  # resolution-free: an IP literal


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/", "gopher://x/"])
async def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(Invalid, match="only http and https"):
        await check_url(url, Allowlist.parse(None))


@pytest.mark.parametrize(
    "url", ["http://[::1/", "http://example.org:99999/", "http://93.184.215.14:http/"]
)
async def test_malformed_urls_are_invalid_not_a_crash(url: str) -> None:
    # A ValueError from urlsplit, or an invalid port httpx would refuse, must be a 422.
    with pytest.raises(Invalid, match="is malformed"):
        await check_url(url, Allowlist.parse(None))


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9/"),
        ("10.0.0.0/8", "http://10.20.30.40/"),
        ("localhost", "http://localhost:9/"),
        ("::1", "http://[::1]:9/"),
        (" other.example , 127.0.0.0/8 ", "http://127.0.0.5/"),
    ],
)
async def test_allowlist_permits_listed_targets(allow: str, url: str) -> None:
    await check_url(url, Allowlist.parse(allow))


async def test_allowlist_does_not_permit_other_private_targets() -> None:
    with pytest.raises(BlockedURL):
        await check_url("http://169.254.169.254/", Allowlist.parse("127.0.0.1,10.0.0.0/8"))


async def test_redirect_to_a_private_target_is_refused(website: ThreadedServer) -> None:
    allow = Allowlist.parse("127.0.0.1")
    async with httpx.AsyncClient() as client:
        with pytest.raises(BlockedURL, match=r"169\.254\.169\.254"):
            await guarded_request(client, "GET", f"{website.url}/to-metadata", allow=allow)
        response, body = await guarded_request(client, "GET", f"{website.url}/to-page", allow=allow)
    assert response.status_code == 200
    assert b"secret number is 4217" in body


async def test_oversized_response_is_refused(website: ThreadedServer) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(UpstreamError, match="larger than"):
            await guarded_request(
                client,
                "GET",
                f"{website.url}/big",
                allow=Allowlist.parse("127.0.0.1"),
                max_bytes=1024,
            )


async def test_dns_rebinding_is_caught_at_connection(
    website: ThreadedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard's lookup says "public"; the connection then reaches loopback.
    async def public_answer(host: str, port: int) -> list[Any]:
        return [ipaddress.ip_address("93.184.215.14")]

    monkeypatch.setattr(outbound, "_resolve", public_answer)
    url = f"http://localhost:{website.port}/page"
    async with httpx.AsyncClient() as client:
        with pytest.raises(BlockedURL, match=r"reached the private address 127\.0\.0\.1"):
            await guarded_request(client, "GET", url, allow=Allowlist.parse(None))
