"""Outbound HTTP for components: the shared client, and the SSRF guard.

Components that fetch URLs chosen by a flow or a caller (URL, API Request, Web
Search) must not become a way into the private network. ``check_url`` refuses
loopback, private, link-local (cloud metadata), shared, multicast, reserved and
unspecified targets, including DNS names that resolve to any of them, unless
the operator's allowlist permits the host: a comma-separated list of host
names, IP addresses or CIDR networks (``localhost,127.0.0.1,10.0.0.0/8``),
set with ``FLOWSERVE_OUTBOUND_ALLOWLIST`` and handed to components by the
runner as ``services["outbound_allowlist"]``. It is deliberately not read from
the run's global variables: those include request headers, and a caller must
not be able to widen the guard. Redirects are followed by hand so each hop is
checked again.

The client is bounded like every pool on a run's path: ``new_http_client``
gives it ``FLOWSERVE_HTTP_POOL_SIZE`` connections (0: max_concurrent_runs),
and a request that finds none free within ``FLOWSERVE_HTTP_POOL_TIMEOUT``
seconds fails as ``PoolExhausted`` (503 with Retry-After), not as the 502 of
a target that failed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from flowserve.engine.component import NodeContext
from flowserve.errors import Forbidden, Invalid, PoolExhausted, UpstreamError

ALLOWLIST_SETTING = "FLOWSERVE_OUTBOUND_ALLOWLIST"
ALLOWLIST_SERVICE = "outbound_allowlist"
MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
# The defaults of FLOWSERVE_HTTP_POOL_SIZE (as max_concurrent_runs) and _TIMEOUT.
DEFAULT_POOL_SIZE = 4096
DEFAULT_POOL_TIMEOUT = 10.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedURL(Forbidden):
    """An outbound request to a private, loopback or link-local target."""

    code = "blocked_url"


class OutboundClient(httpx.AsyncClient):
    """httpx's client, knowing its pool size for the error that names it."""

    def __init__(self, pool_size: int, pool_timeout: float) -> None:
        super().__init__(
            timeout=httpx.Timeout(30.0, pool=pool_timeout),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            follow_redirects=False,
        )
        self.pool_size = pool_size


def new_http_client(
    pool_size: int = DEFAULT_POOL_SIZE, pool_timeout: float = DEFAULT_POOL_TIMEOUT
) -> OutboundClient:
    """The client for components' (and event deliveries') outbound HTTP: at most
    ``pool_size`` connections, a request waiting ``pool_timeout`` seconds for one."""
    return OutboundClient(pool_size, pool_timeout)


@asynccontextmanager
async def http_client(ctx: NodeContext) -> AsyncIterator[httpx.AsyncClient]:
    """The run's shared client (``services["http"]``), or a short-lived one."""
    shared = ctx.run.services.get("http")
    if isinstance(shared, httpx.AsyncClient):
        yield shared
        return
    async with new_http_client() as client:
        yield client


def pool_exhausted(client: httpx.AsyncClient) -> PoolExhausted:
    size = client.pool_size if isinstance(client, OutboundClient) else 0
    return PoolExhausted("outbound HTTP connection", "http_pool_size", size)


@dataclass(frozen=True, slots=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, spec: str | Iterable[str] | None) -> Allowlist:
        items = spec.split(",") if isinstance(spec, str) else list(spec or ())
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in items:
            entry = item.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    @classmethod
    def of(cls, ctx: NodeContext) -> Allowlist:
        """The operator's allowlist for this run (empty when none is configured)."""
        configured = ctx.run.services.get(ALLOWLIST_SERVICE)
        if isinstance(configured, Allowlist):
            return configured
        if isinstance(configured, Iterable):  # a comma-separated str, or entries
            return cls.parse(configured)
        return cls.parse(None)

    def permits_host(self, host: str) -> bool:
        return host.lower() in self.hosts

    def permits_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address in ipaddress.ip_network("100.64.0.0/10")
    )


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UpstreamError(f"cannot resolve host '{host}': {exc.strerror}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_url(url: str, allow: Allowlist) -> None:
    """Raise ``BlockedURL`` unless ``url`` is http(s) to a public or allowlisted host."""
    try:
        parts = urlsplit(url)
        given_port = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise Invalid(f"the URL '{url}' is malformed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise Invalid(f"only http and https URLs can be fetched, not '{url}'")
    host = (parts.hostname or "").lower()
    if not host:
        raise Invalid(f"the URL '{url}' has no host")
    if allow.permits_host(host):
        return
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        port = given_port or (443 if parts.scheme == "https" else 80)
        addresses = await _resolve(host, port)
    for address in addresses:
        if not is_public(address) and not allow.permits_address(address):
            raise BlockedURL(
                f"refusing to fetch '{url}': {host} is a private, loopback or link-local "
                f"address ({address}); an operator can allow it with {ALLOWLIST_SETTING}"
            )


async def guarded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    allow: Allowlist,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    params: Mapping[str, str] | None = None,
    time_limit: float = 30.0,
    follow_redirects: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[httpx.Response, bytes]:
    """Send a request with every hop checked by the guard; read at most ``max_bytes``."""
    for _ in range(MAX_REDIRECTS + 1):
        await check_url(url, allow)
        # The component's time limit for the exchange; the client's for a free connection.
        timeout = httpx.Timeout(time_limit, pool=client.timeout.pool)
        request = client.build_request(
            method, url, headers=headers, content=content, params=params, timeout=timeout
        )
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
        except httpx.PoolTimeout as exc:
            raise pool_exhausted(client) from exc
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"request to {url} timed out after {time_limit:g}s") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"request to {url} failed: {exc}") from exc
        try:
            _check_peer(response, url, allow)
            if follow_redirects and response.is_redirect and "location" in response.headers:
                url = urljoin(str(response.url), response.headers["location"])
                params = None
                if response.status_code in (301, 302, 303) and method != "HEAD":
                    method, content = "GET", None
                continue
            body = await _read_limited(response, max_bytes, url)
            return response, body
        finally:
            await response.aclose()
    raise UpstreamError(f"too many redirects (more than {MAX_REDIRECTS})")


def _check_peer(response: httpx.Response, url: str, allow: Allowlist) -> None:
    """Check the address actually connected to: a DNS answer that changed between
    ``check_url`` and the connection (DNS rebinding) must not reach a private host.
    The request has been sent by then, but nothing of the response is read."""
    stream = response.extensions.get("network_stream")
    if stream is None or allow.permits_host(urlsplit(url).hostname or ""):
        return
    peer = stream.get_extra_info("server_addr")
    if not peer:
        return
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%")[0])
    except ValueError:
        return
    if not is_public(address) and not allow.permits_address(address):
        raise BlockedURL(
            f"refusing '{url}': the connection reached the private address {address}; "
            f"an operator can allow it with {ALLOWLIST_SETTING}"
        )


async def _read_limited(response: httpx.Response, max_bytes: int, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise UpstreamError(f"response from {url} is larger than {max_bytes} bytes")
            chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise UpstreamError(f"reading {url} failed: {exc}") from exc
    return b"".join(chunks)
