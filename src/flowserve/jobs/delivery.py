"""Delivering one event to one subscriber: the SSRF guard, signing, the delivery log.

A delivery job carries the event body and the id of the previous event of the
same run for the same subscription (``after``); it waits (``Defer``) until
that one is finished, so a subscriber receives each run's events in order
even though deliveries are retried independently. Subscriber URLs may not
point into the private network (loopback, private, link-local, reserved...)
unless the ``webhook_allowlist`` setting names the host, address or network;
the check runs when a subscription is saved and again before every attempt,
and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import structlog

from flowserve.errors import Invalid
from flowserve.jobs.signing import signed_headers
from flowserve.jobs.worker import Defer, Permanent
from flowserve.store.jobs import (
    FINAL,
    DeliveryAttempt,
    Job,
    JobQueue,
    SubscriptionStore,
)

log = structlog.get_logger(__name__)

DELIVER = "deliver"
# How long a delivery waits for the previous event of its run before going ahead anyway.
ORDER_WAIT_LIMIT = 3600.0
ORDER_POLL = 0.2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeURL(Invalid):
    code = "unsafe_url"


@dataclass(frozen=True, slots=True)
class Allowlist:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for item in (part.strip().lower() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def permits(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


async def check_url(url: str, allow: Allowlist) -> None:
    """Raise ``UnsafeURL`` unless ``url`` is http(s) to a public (or allowlisted) host."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise UnsafeURL(f"Webhook URL '{url}' is malformed: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"Webhook URL '{url}' must be an absolute http:// or https:// URL")
    host = parts.hostname.lower().rstrip(".")
    if host in allow.hosts:
        return
    for address in await _resolve(host, port or (443 if parts.scheme == "https" else 80)):
        if not address.is_global and not allow.permits(address):
            raise UnsafeURL(
                f"Webhook URL '{url}' points to {address}, a private, loopback, link-local or "
                "reserved address; set FLOWSERVE_WEBHOOK_ALLOWLIST to permit it"
            )


async def _resolve(host: str, port: int) -> Sequence[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeURL(f"Webhook host '{host}' does not resolve: {exc.strerror}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class DeliveryFailed(Exception):
    """The subscriber did not accept the event (network error or a non-2xx answer)."""


@dataclass
class Deliverer:
    """The handler of ``deliver`` jobs."""

    queue: JobQueue
    subscriptions: SubscriptionStore
    http: httpx.AsyncClient
    allow: Allowlist
    timeout: float = 10.0

    async def __call__(self, job: Job) -> dict[str, Any]:
        p = job.payload
        await self._wait_for_previous(job)
        sub = await self.subscriptions.get(p["flow_id"], p["subscription_id"])
        if sub is None or not sub.enabled:
            return {"skipped": "the subscription was deleted or disabled"}
        attempt = DeliveryAttempt(
            message_id=p["message_id"],
            event=p["event"],
            job_id=job.id,
            attempt=job.attempts,
            at=time.time(),
        )
        try:
            await check_url(sub.url, self.allow)
        except UnsafeURL as exc:
            attempt.error = exc.detail
            await self.subscriptions.record(sub.id, attempt)
            raise Permanent(exc.detail) from exc
        body: bytes = p["body"].encode()
        headers = signed_headers(sub.secret, p["message_id"], int(time.time()), body)
        started = time.perf_counter()
        try:
            response = await self.http.post(
                sub.url, content=body, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            attempt.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            attempt.duration_ms = (time.perf_counter() - started) * 1000
            await self.subscriptions.record(sub.id, attempt)
            raise DeliveryFailed(attempt.error) from exc
        attempt.duration_ms = (time.perf_counter() - started) * 1000
        attempt.status_code = response.status_code
        attempt.delivered = response.is_success
        if not response.is_success:
            attempt.error = f"the subscriber answered HTTP {response.status_code}"
        await self.subscriptions.record(sub.id, attempt)
        if response.status_code == 410:  # Gone: the subscriber asks us to stop
            await self.subscriptions.put(msgspec.structs.replace(sub, enabled=False))
            raise Permanent("the subscriber answered 410 Gone; subscription disabled")
        if not response.is_success:
            raise DeliveryFailed(attempt.error or "")
        return {"status_code": response.status_code, "message_id": p["message_id"]}

    async def _wait_for_previous(self, job: Job) -> None:
        after = job.payload.get("after")
        if not after or time.time() - job.created_at > ORDER_WAIT_LIMIT:
            return
        previous = await self.queue.get(after)
        if previous is not None and previous.status not in FINAL:
            raise Defer(ORDER_POLL)
