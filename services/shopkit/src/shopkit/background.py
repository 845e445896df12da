"""Background work tied to the app's lifespan (sweepers, listeners): started with the app, cancelled at shutdown."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, object], *, name: str) -> AsyncIterator[None]:
    """Runs `work` as a task while the context is open, and cancels it (and waits for it) when the context ends."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def periodically(job: Callable[[], Awaitable[object]], *, every: float, name: str) -> AsyncIterator[None]:
    """Runs `job` every `every` seconds while the context is open. A failing round (the database or another
    service briefly away) is logged as `<name>_failed` and the next round tries again."""

    async def rounds() -> None:
        while True:
            try:
                await job()
            except Exception as exc:
                log.warning(f"{name}_failed", error_type=type(exc).__name__)
            await asyncio.sleep(every)

    async with in_background(rounds(), name=name):
        yield
