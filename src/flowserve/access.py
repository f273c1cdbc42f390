"""Access control: API keys, scopes, flow restrictions and rate limits. No HTTP here.

A key is ``fs_`` followed by 43 random URL-safe characters (256 bits from
``secrets``). It is shown once, when created; the store keeps its SHA-256 and
an 8-character prefix that lets people tell their keys apart. Scopes are
``read`` < ``execute`` < ``write`` < ``admin`` in reach, though only ``admin``
implies the others: a key holds exactly the scopes it was given, plus all of
them when one is ``admin``. ``FLOWSERVE_API_KEY`` is an admin key that is
accepted without being stored (the bootstrap key).

Verifying a key must not cost a store round trip per request, so a verified
record is trusted for ``key_cache_ttl`` seconds; a revocation reaches this
instance's cache at once, and other instances through ``KeyEvents`` (Redis
pub/sub) or, failing that, when their cache entry expires. Usage (last used,
total uses) is counted in memory and written at most once a minute per key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from flowserve.errors import (
    ApiKeyNotFound,
    FlowserveError,
    InsufficientScope,
    Invalid,
    InvalidApiKey,
    MissingApiKey,
    RateLimited,
    Unavailable,
)
from flowserve.settings import Settings, SettingsError
from flowserve.singleflight import SingleFlight
from flowserve.store.base import KeyEvents, KeyRecord, KeyStore, RateLimiter

log = structlog.get_logger(__name__)

SCOPES = ("read", "execute", "write", "admin")
MISSING_KEY = (
    "An API key is required: send it in the x-api-key header, the x-api-key query "
    "parameter, or as Authorization: Bearer <key>"
)
KEY_PREFIX = "fs_"
VISIBLE_PREFIX_LENGTH = 8
TOUCH_INTERVAL = 60.0
_MAX_CACHED = 10_000


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    # A fast hash is right here, unlike for passwords: a generated key carries 256
    # random bits, so no amount of guessing finds a preimage, while bcrypt or argon2
    # would add milliseconds to every request. (A bootstrap key set by hand is the
    # operator's to make long.)
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def mask(prefix: str) -> str:
    """How a stored key is shown in listings: its prefix, then stars (as Langflow does)."""
    return prefix + "*" * (len(KEY_PREFIX) + 43 - len(prefix))


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key (stored or bootstrap), or nobody (a public flow's visitor)."""

    key_id: str | None
    name: str
    scopes: frozenset[str]
    # None: every flow; otherwise the flow ids / endpoint names this caller may touch.
    flows: frozenset[str] | None = None

    def allows(self, scope: str) -> bool:
        return scope == "public" or "admin" in self.scopes or scope in self.scopes

    def allows_flow(self, *refs: str | None) -> bool:
        return self.flows is None or any(ref in self.flows for ref in refs if ref)

    @property
    def id(self) -> str:
        """A stable name for logs and sessions (the key's id, never the key)."""
        return self.key_id or self.name

    def require(self, scope: str) -> None:
        if not self.allows(scope):
            held = ", ".join(sorted(self.scopes)) or "none"
            raise InsufficientScope(
                f"This API key lacks the '{scope}' scope this endpoint requires (it has: {held})"
            )


ANONYMOUS = Principal(None, "anonymous", frozenset())
# What handlers see when FLOWSERVE_AUTH=off: everything is allowed.
UNRESTRICTED = Principal(None, "auth disabled", frozenset({"admin"}))
BOOTSTRAP = Principal("bootstrap", "FLOWSERVE_API_KEY", frozenset({"admin"}))


@dataclass(slots=True)
class _Cached:
    record: KeyRecord
    principal: Principal
    until: float


def _principal(record: KeyRecord) -> Principal:
    flows = frozenset(record.flows) if record.flows is not None else None
    return Principal(record.id, record.name, frozenset(record.scopes), flows)


def normalise_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = set(scopes)
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise Invalid(f"Unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}")
    if not chosen:
        raise Invalid(f"A key needs at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in chosen)


class Access:
    """Verifies presented keys, manages stored ones, and counts requests against limits."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyStore,
        limiter: RateLimiter,
        events: KeyEvents | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        touch_interval: float = TOUCH_INTERVAL,
    ) -> None:
        self.enabled = settings.auth == "on"
        self.webhook_auth = settings.webhook_auth
        self.open_webhooks = frozenset(
            name.strip() for name in settings.open_webhooks.split(",") if name.strip()
        )
        self.keys = keys
        self._limiter = limiter
        self._events = events
        self._clock = clock
        self._ttl = settings.key_cache_ttl
        self._window = settings.rate_limit_window
        self._per_key = settings.rate_limit_per_key
        self._per_ip = settings.rate_limit_per_ip
        self._lookups_per_ip = settings.rate_limit_key_lookups
        self._bootstrap = hash_key(settings.api_key) if settings.api_key else None
        self.metrics_public = settings.metrics_public
        self._metrics_token = hash_key(settings.metrics_token) if settings.metrics_token else None
        self._cache: dict[str, _Cached] = {}
        self._lookups: SingleFlight[str, KeyRecord | None] = SingleFlight()
        self._touch_interval = touch_interval
        self._pending_uses: dict[str, int] = {}
        self._last_touch: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Refuse to serve with nothing to authenticate with; follow revocations."""
        if not self.enabled:
            log.warning(
                "auth_disabled",
                detail="FLOWSERVE_AUTH=off: EVERY ENDPOINT IS OPEN TO ANYONE WHO CAN REACH "
                "THIS SERVER. Use this only on a trusted network or behind another gate.",
            )
            return
        if self._bootstrap is None and await self.keys.count_usable(datetime.now(UTC)) == 0:
            raise SettingsError(
                "No API key is configured: set FLOWSERVE_API_KEY (or LANGFLOW_API_KEY) to an "
                "admin key, create one with `flowserve keys create`, or set FLOWSERVE_AUTH=off "
                "to serve without authentication"
            )
        if self._events is not None:
            self._events.follow(self.forget, self.forget_all)

    async def aclose(self) -> None:
        for key_id in list(self._pending_uses):
            self._flush_uses(key_id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._events is not None:
            await self._events.aclose()

    # -- verification (the hot path) -------------------------------------

    async def authenticate(self, presented: str, client: str | None = None) -> Principal:
        """The principal for a presented key; ``InvalidApiKey`` when it opens nothing.

        A key not in the cache costs a store query; ``client`` (the caller's address)
        bounds how many of those one address may cause, so a flood of made-up keys
        cannot hammer the database."""
        digest = hash_key(presented)
        # Lookups below go by digest; comparing digests in constant time on top
        # keeps even the bootstrap check free of a timing signal.
        if self._bootstrap is not None and hmac.compare_digest(digest, self._bootstrap):
            return BOOTSTRAP
        cached = self._cache.get(digest)
        if cached is None or cached.until <= self._clock():
            if client is not None and self._lookups_per_ip:
                await self._hit(f"lookup:{client}", self._lookups_per_ip, "client address")
            cached = await self._reload(digest, cached)
        if cached is None or not hmac.compare_digest(cached.record.key_hash, digest):
            raise InvalidApiKey("Invalid API key")
        record = cached.record
        if record.revoked_at is not None:
            raise InvalidApiKey("This API key has been revoked")
        if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
            raise InvalidApiKey(f"This API key expired at {record.expires_at.isoformat()}")
        self._count_use(record.id)
        return cached.principal

    def opens_metrics(self, presented: str | None) -> bool:
        """Whether a scraper may read /metrics with this bearer token (or none at all)."""
        if self.metrics_public:
            return True
        if presented is None or self._metrics_token is None:
            return False
        return hmac.compare_digest(hash_key(presented), self._metrics_token)

    async def authenticate_headers(self, headers: Mapping[str, str]) -> Principal:
        """The caller named by lowercase request headers (``x-api-key`` or Bearer), for
        transports that authenticate outside the route guard (MCP sessions)."""
        if not self.enabled:
            return UNRESTRICTED
        key = headers.get("x-api-key", "").strip()
        if not key:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else ""
        if not key:
            raise MissingApiKey(MISSING_KEY)
        return await self.authenticate(key)

    async def _reload(self, digest: str, stale: _Cached | None) -> _Cached | None:
        try:
            return await self._load(digest)
        except Unavailable:
            if stale is None:
                raise
            # The store is down: keep trusting what was verified before, rather than
            # lock every client out. Revocations still arrive through KeyEvents.
            log.warning("api_key_store_unavailable_using_cache", key_id=stale.record.id)
            return stale

    async def _load(self, digest: str) -> _Cached | None:
        # One store query per digest at a time, however many requests wait on it.
        record = await self._lookups.run(digest, lambda: self.keys.by_hash(digest))
        if record is None:
            self._cache.pop(digest, None)
            # Unknown digests are not cached: a key created on another instance
            # must work at once, and random guesses must not fill memory.
            return None
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        cached = self._cache[digest] = _Cached(
            record, _principal(record), self._clock() + self._ttl
        )
        return cached

    def forget(self, key_id: str) -> None:
        """Drop a key from the verified-key cache (it was revoked here or elsewhere)."""
        for digest in [d for d, c in self._cache.items() if c.record.id == key_id]:
            del self._cache[digest]

    def forget_all(self) -> None:
        self._cache.clear()

    def _count_use(self, key_id: str) -> None:
        self._pending_uses[key_id] = self._pending_uses.get(key_id, 0) + 1
        now = self._clock()
        if now - self._last_touch.get(key_id, -math.inf) >= self._touch_interval:
            self._last_touch[key_id] = now
            self._flush_uses(key_id)

    def _flush_uses(self, key_id: str) -> None:
        uses = self._pending_uses.pop(key_id, 0)
        if uses:
            task = asyncio.create_task(self._touch(key_id, datetime.now(UTC), uses))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _touch(self, key_id: str, at: datetime, uses: int) -> None:
        try:
            await self.keys.touch(key_id, at, uses)
        except FlowserveError as exc:
            log.warning("api_key_usage_not_recorded", key_id=key_id, detail=exc.detail)

    # -- rate limits --------------------------------------------------------

    async def limit_key(self, principal: Principal) -> None:
        if self._per_key and principal.key_id is not None:
            await self._hit(f"key:{principal.key_id}", self._per_key, "API key")

    async def limit_client(self, client_ip: str) -> None:
        if self._per_ip:
            await self._hit(f"ip:{client_ip}", self._per_ip, "client address")

    async def _hit(self, bucket: str, limit: int, who: str) -> None:
        wait = await self._limiter.hit(bucket, limit, self._window)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited(
                f"Rate limit exceeded: {limit} requests per {self._window:g} s for this {who}; "
                f"retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )

    # -- management ---------------------------------------------------------

    async def create_key(
        self,
        *,
        name: str,
        scopes: Sequence[str],
        flows: Sequence[str] | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[KeyRecord, str]:
        """Store a new key; returns its record and the key itself, which is never kept."""
        chosen = normalise_scopes(scopes)
        now = datetime.now(UTC)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise Invalid("expires_at needs a timezone, e.g. 2030-01-01T00:00:00Z")
            if expires_at <= now:
                raise Invalid("expires_at must be in the future")
        allowed: tuple[str, ...] | None = None
        if flows is not None:
            allowed = tuple(dict.fromkeys(f.strip() for f in flows if f.strip()))
            if not allowed:
                raise Invalid("flows must name at least one flow (omit it to allow every flow)")
        key = generate_key()
        record = KeyRecord(
            id=str(uuid.uuid4()),
            name=name.strip() or f"key {key[:VISIBLE_PREFIX_LENGTH]}",
            prefix=key[:VISIBLE_PREFIX_LENGTH],
            key_hash=hash_key(key),
            scopes=chosen,
            flows=allowed,
            expires_at=expires_at,
            created_at=now,
        )
        stored = await self.keys.create(record)
        log.info("api_key_created", key_id=stored.id, scopes=list(stored.scopes))
        return stored, key

    async def list_keys(self) -> list[KeyRecord]:
        return await self.keys.list()

    async def revoke_key(self, key_id: str) -> KeyRecord:
        record = await self.keys.revoke(key_id, datetime.now(UTC))
        if record is None:
            raise ApiKeyNotFound(f"API key {key_id} not found")
        self.forget(key_id)
        if self._events is not None:
            await self._events.publish_revoked(key_id)
        log.info("api_key_revoked", key_id=key_id)
        return record
