"""shopkit.problems: an unexpected error is a bare 500 problem+json, with no detail, and the probes still answer."""

import httpx
from fastapi import APIRouter

from shopkit import ServiceSettings, create_app
from tests.conftest import running

boom = APIRouter()


@boom.get("/boom")
async def explode() -> None:
    raise RuntimeError("secret internal detail: password=hunter2")


async def test_unexpected_errors_are_a_bare_500_problem_and_probes_answer() -> None:
    app = create_app(ServiceSettings(memory_budget_bytes=1), title="t", routers=[boom])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom", headers={"X-Request-ID": "req-123"})
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "hunter2" not in response.text
        assert "Traceback" not in response.text
        assert response.headers["x-request-id"] == "req-123"
        healthz = await client.get("/healthz")
        assert healthz.status_code == 503  # a 1-byte budget: every process is over it
        assert "over the budget" in healthz.json()["reason"]
        assert (await client.get("/ready")).status_code == 503
        assert (await client.get("/nowhere")).headers["content-type"] == "application/problem+json"
