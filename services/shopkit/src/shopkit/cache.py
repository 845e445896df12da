"""A response cache for chosen GET paths: a hit is answered from stored bytes, without entering FastAPI's routing.

Only what the real route answered is stored, so query validation still happens on every miss and an invalid
request is never cached: a `200` whose `Cache-Control` does not forbid storing, keyed by path and raw query string.

An entry is served while

- the cache is enabled (`suspend()` turns it off, e.g. while its invalidation channel is down),
- its version is current: `invalidate()` bumps the version and drops every entry; the version is read *before*
  the route runs, so an answer built while a change happened is not stored,
- it is younger than `max_age` (or the response's own `max-age`, when `follow_max_age` is set: what a shared
  HTTP cache such as a gateway does; hits then carry an `Age` header).

A request with `Cache-Control: no-cache` (or `no-store`) goes to the route, and its answer refreshes the entry.
Concurrent misses of one key wait for the first one's answer (single flight) instead of all running the route.
"""

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CacheKey = tuple[str, bytes]

CACHE_REQUESTS = Counter(
    "shop_response_cache_requests_total",
    "Requests to cached paths by outcome: hit (answered from the cache), miss (the route ran), bypass",
    ["outcome"],
)
_HITS, _MISSES, _BYPASSES = (CACHE_REQUESTS.labels(outcome=o) for o in ("hit", "miss", "bypass"))


@dataclass(frozen=True, slots=True)
class CachedResponse:
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    stored_at: float
    expires_at: float


def _directives(value: bytes) -> dict[str, str]:
    """`Cache-Control: public, max-age=5` → {"public": "", "max-age": "5"}."""
    directives = {}
    for part in value.decode("latin-1").lower().split(","):
        name, _, argument = part.strip().partition("=")
        if name:
            directives[name] = argument.strip().strip('"')
    return directives


def _bypasses(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"cache-control":
            directives = _directives(value)
            return "no-cache" in directives or "no-store" in directives
    return False


class ResponseCache:
    """Stored answers, their version and whether the cache may be used at all. One per app."""

    def __init__(
        self,
        *,
        max_age: float,
        follow_max_age: bool = False,
        max_bytes: int = 4 * 1024 * 1024,
        enabled: bool = True,
    ) -> None:
        self.max_age = max_age
        self.follow_max_age = follow_max_age
        self.max_bytes = max_bytes
        self.version = 0
        self.enabled = enabled
        self._entries: dict[CacheKey, CachedResponse] = {}
        self._bytes = 0
        self._in_flight: dict[CacheKey, asyncio.Future[CachedResponse | None]] = {}

    def invalidate(self) -> None:
        """Everything stored so far, and every answer being built right now, is out of date."""
        self.version += 1
        self._entries.clear()
        self._bytes = 0

    def suspend(self) -> None:
        """Until `resume()`, every request goes to the route and nothing is stored."""
        self.enabled = False
        self.invalidate()

    def resume(self) -> None:
        self.invalidate()
        self.enabled = True

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, now: float) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None or now >= entry.expires_at:
            return None
        return entry

    def lifetime(self, headers: list[tuple[bytes, bytes]]) -> float:
        """How long an answer with these headers may be kept; 0 when it must not be stored."""
        directives: dict[str, str] = {}
        for name, value in headers:
            if name == b"set-cookie":
                return 0.0
            if name == b"cache-control":
                directives = _directives(value)
        if directives.keys() & {"no-store", "no-cache", "private"}:
            return 0.0
        if not self.follow_max_age:
            return self.max_age
        try:
            return min(self.max_age, float(directives.get("s-maxage") or directives["max-age"]))
        except (KeyError, ValueError):
            return 0.0

    def store(self, key: CacheKey, entry: CachedResponse, version: int) -> bool:
        """Keeps `entry` if the version read before its route ran is still current; the oldest entries make
        room when the cache is over `max_bytes`."""
        if not self.enabled or version != self.version or len(entry.body) > self.max_bytes:
            return False
        if (previous := self._entries.pop(key, None)) is not None:
            self._bytes -= len(previous.body)
        while self._entries and self._bytes + len(entry.body) > self.max_bytes:
            oldest = next(iter(self._entries))
            self._bytes -= len(self._entries.pop(oldest).body)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        return True


class ResponseCacheMiddleware:
    """Answers GET requests to `paths` from `cache` (pure ASGI, innermost: hits are still counted and logged)."""

    def __init__(self, app: ASGIApp, *, cache: ResponseCache, paths: Collection[str]) -> None:
        self.app = app
        self.cache = cache
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self.cache
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths or not cache.enabled:
            await self.app(scope, receive, send)
            return
        key: CacheKey = (scope["path"], scope["query_string"])
        if _bypasses(scope["headers"]):
            _BYPASSES.inc()
            await self._fill(key, scope, receive, send)
            return
        entry = cache.get(key, time.monotonic())
        if entry is None and (flight := cache._in_flight.get(key)) is not None:
            await asyncio.shield(flight)  # its result may be None (not cacheable): then look again, miss below
            entry = cache.get(key, time.monotonic())
        if entry is not None:
            _HITS.inc()
            await self._replay(entry, send)
            return
        _MISSES.inc()
        flight = asyncio.get_running_loop().create_future()
        cache._in_flight[key] = flight
        try:
            flight.set_result(await self._fill(key, scope, receive, send))
        finally:
            if cache._in_flight.get(key) is flight:
                del cache._in_flight[key]
            if not flight.done():
                flight.set_result(None)

    async def _replay(self, entry: CachedResponse, send: Send) -> None:
        headers = list(entry.headers)
        if self.cache.follow_max_age:
            headers.append((b"age", b"%d" % (time.monotonic() - entry.stored_at)))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": entry.body})

    async def _fill(self, key: CacheKey, scope: Scope, receive: Receive, send: Send) -> CachedResponse | None:
        """Runs the route, passing its answer on as it comes, and stores it when it may be kept."""
        version, started_at = self.cache.version, time.monotonic()
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] | None = None
        complete = False

        async def capture(message: Message) -> None:
            nonlocal headers, chunks, complete
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    headers, chunks = list(message.get("headers", ())), []
            elif message["type"] == "http.response.body" and chunks is not None:
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        await self.app(scope, receive, capture)
        if chunks is None or not complete or (lifetime := self.cache.lifetime(headers)) <= 0:
            return None
        entry = CachedResponse(tuple(headers), b"".join(chunks), started_at, started_at + lifetime)
        return entry if self.cache.store(key, entry, version) else None
