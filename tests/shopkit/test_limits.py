"""shopkit.limits: a streamed body over the limit is a 413 problem."""

from collections.abc import AsyncIterator

from fastapi import APIRouter

from shopkit import ServiceSettings, create_app
from tests.conftest import client_for, running

echoing = APIRouter()


@echoing.post("/echo")
async def echo() -> None:
    return None


async def test_a_streamed_oversized_body_is_a_413_problem() -> None:
    app = create_app(ServiceSettings(max_body_bytes=1024), title="t", routers=[echoing])

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    async with running(app), client_for(app, "t") as client:
        response = await client.post("/echo", content=chunks())
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/body-too-large")
