"""Keeps the product list cache consistent with the `products` table, across every catalog replica.

Migration 0003 makes PostgreSQL notify the `products_changed` channel at the commit of every statement that
changes `products` (a reservation, a release, an expiry, a new price). Each process listens on its own connection
and invalidates its cache on every notification. While that connection is down (or the trigger is not there yet)
the cache is suspended and every read goes to the database: nothing is served without a live invalidation channel.
After a reconnection the cache starts empty, since changes made meanwhile were not heard.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
import structlog

from shopkit import ResponseCache, in_background

CHANNEL = "products_changed"
TRIGGER_INSTALLED = (
    "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'products_changed' AND tgrelid = to_regclass('products'))"
)

log = structlog.get_logger(__name__)


class Listener:
    """Keeps `cache` enabled exactly while a connection listening on the channel is up; reconnects with a backoff
    (0.1 s doubling up to `max_backoff`) and checks an idle connection every `check_every` seconds."""

    def __init__(self, url: str, cache: ResponseCache, *, check_every: float = 5.0, max_backoff: float = 5.0) -> None:
        self.url = url
        self.cache = cache
        self.check_every = check_every
        self.max_backoff = max_backoff
        self.connected = False

    async def run(self) -> None:
        delay, failures = 0.1, 0
        while True:
            try:
                await self._listen()
            except Exception as exc:
                if self.connected or failures == 0:
                    log.warning("product_cache_suspended", error_type=type(exc).__name__, error=str(exc)[:200])
                if self.connected:
                    delay, failures = 0.1, 0
                failures += 1
            finally:
                self.connected = False
                self.cache.suspend()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def _listen(self) -> None:
        """Listens until the connection fails; returns only by raising."""
        connection = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=3, application_name="resilient-shop-listener"
        )
        try:
            await connection.execute(f"LISTEN {CHANNEL}")
            row = await (await connection.execute(TRIGGER_INSTALLED)).fetchone()
            if not (row and row[0]):
                raise LookupError("the products_changed trigger is not installed (migrations not applied yet)")
            self.cache.resume()
            self.connected = True
            log.info("product_cache_listening", channel=CHANNEL)
            while True:
                async for _ in connection.notifies(timeout=self.check_every):
                    self.cache.invalidate()
                # No news for a while: make sure that is because nothing changed, not because the server is gone.
                async with asyncio.timeout(self.check_every):
                    await connection.execute("SELECT 1")
        finally:
            await connection.close()  # not the context manager, whose rollback could wait on a dead socket


@contextlib.asynccontextmanager
async def invalidated_by_notifications(listener: Listener) -> AsyncIterator[None]:
    """Runs the listener while the context is open; the cache stays suspended until it is connected."""
    listener.cache.suspend()
    try:
        async with in_background(listener.run(), name="product_cache_listener"):
            yield
    finally:
        listener.cache.suspend()
