"""Periodic background work tied to the app's lifespan (sweepers): started with the app, cancelled at shutdown."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


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

    task = asyncio.create_task(rounds(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
