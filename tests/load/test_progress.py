"""The drill's status line: one phase at a time, for its seconds or until what it waits for has happened."""

import asyncio
import io
import time
from collections.abc import Mapping
from typing import Any

import httpx

from shop_load.core.customers import Shoppers
from shop_load.core.records import Checkout, Mark
from shop_load.drill.progress import Progress
from shop_load.targets.target import Target


class Unready(Target):
    """A target whose status is asked for at every tick of the line, and that recovers at the third."""

    def __init__(self) -> None:
        self.mode, self.notes, self.polls = "local", [], 0

    async def inject(self, client: httpx.AsyncClient, fault: str, body: Mapping[str, Any] | None) -> None:
        raise NotImplementedError

    def marks(self) -> list[Mark]:
        return []

    def recovered(self) -> bool:
        return self.polls >= 3

    def restarts(self) -> int | None:
        return None

    async def finish(self, client: httpx.AsyncClient, *, wait: bool = True) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def status(self) -> str:
        self.polls += 1
        return f"payment unready ({self.polls})"


def test_a_phase_lasts_its_seconds_or_until_it_is_over_and_shows_the_line() -> None:
    stream, target = io.StringIO(), Unready()
    shoppers = Shoppers("http://shop", lambda: 12.0, checkouts=[Checkout("k-1", 0, {}, 11.0, "captured")])
    progress = Progress(shoppers, target, lambda: 12.0, stream=stream)

    started = time.monotonic()
    asyncio.run(progress.wait("fault", 60, until=target.recovered))
    assert time.monotonic() - started < 5, "over once the target recovered, not after its 60 s"
    assert target.polls == 3
    line = stream.getvalue()
    assert line.startswith("[  12.0 s] fault      checkouts     1 (   0/s) answered     1 gave up   0 in flight   0")
    assert line.endswith(" | payment unready (1)\n"), "a line, not rewritten in place, when not on a terminal"

    started = time.monotonic()
    asyncio.run(progress.wait("cool-down", 0.6))
    assert 0.5 <= time.monotonic() - started < 5
    assert (progress.phase, progress.probe) == ("cool-down", f"payment unready ({target.polls})")
    assert target.polls >= 5
    assert stream.getvalue() == line, "at most a line every 5 s"
