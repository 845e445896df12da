"""The chaos API (shopkit.chaos) seen from outside: the request that injects a fault (`POST /chaos/<fault>` with its
JSON body), shows the faults (`GET /chaos`) and clears them (`DELETE /chaos`), each with the `X-Chaos-Token`
header, and what a refusal means for whoever sent it (`ChaosRefused`, saying what to do).

The caller brings the transport (`Send`): an httpx client on a process's URL (`over_http`: make run, the container
proof), or a port-forward to one pod through the Kubernetes API (`shop_devtools.cluster.kube.Cluster.transport`: `make
leak`, the drill on a cluster).
"""

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

HEADER = "X-Chaos-Token"
"""The header every chaos request carries the token in."""
LIVENESS_LEAK_MIB_PER_SECOND = 3.0
"""A leak liveness catches: from the memory budget (where /healthz turns 503) to the limit there is room for this
rate over liveness's window and the drain (tests/k8s/test_profiles.py computes it from the manifests)."""
OOM_LEAK_MIB_PER_SECOND = 40.0
"""A leak that outruns liveness and ends as `OOMKilled`, to show the other way a leaking pod dies."""

Send = Callable[[str, str, Mapping[str, Any] | None, Mapping[str, str]], Awaitable[tuple[int, str]]]
"""One request (method, path, JSON body or None, headers) → its status and body text; raises `ChaosRefused` when
nothing answers."""


class ChaosRefused(Exception):
    """The chaos endpoint refused the fault (disabled, wrong token, unreachable); the message says what to do."""


def leak_body(mb_per_second: float, max_mb: int | None = None) -> dict[str, Any]:
    """`POST /chaos/leak`'s body: the growth rate, and the cap when there is one (none: it grows until stopped)."""
    return {"mb_per_second": float(mb_per_second), **({"max_mb": max_mb} if max_mb is not None else {})}


def refusal(where: str, method: str, path: str, status: int, text: str) -> str:
    if status == 404:
        disabled = f"chaos is disabled at {where} ({method} {path} answered 404)"
        return f"{disabled}: start the shop with CHAOS_ENABLED=true and a CHAOS_TOKEN"
    if status in {401, 403}:
        return f"{where} refused the chaos token ({status}): pass the CHAOS_TOKEN the shop runs with"
    return f"{method} {path} at {where} answered {status}: {text[:200]}"


@dataclass(frozen=True)
class Chaos:
    """One process's chaos endpoint, reached through `send`; `where` names it in messages (a URL, `pod <name>`)."""

    send: Send
    token: str
    where: str

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> str:
        status, text = await self.send(method, path, body, {HEADER: self.token})
        if status >= 300:
            raise ChaosRefused(refusal(self.where, method, path, status, text))
        return text

    async def status(self) -> dict[str, Any]:
        """The faults in place (`GET /chaos`): also the check that chaos is on and the token right."""
        return dict(json.loads(await self._call("GET", "/chaos")))

    async def inject(self, fault: str, body: Mapping[str, Any] | None = None) -> str:
        """Sends the fault; returns what was sent (`POST /chaos/leak {...}`), for the timeline."""
        await self._call("POST", f"/chaos/{fault}", body)
        return f"POST /chaos/{fault} {dict(body) if body else ''}".strip()

    async def leak(self, mb_per_second: float, max_mb: int | None = None) -> str:
        return await self.inject("leak", leak_body(mb_per_second, max_mb))

    async def clear(self) -> None:
        """Takes every fault out (`DELETE /chaos`): the leak stops and its memory is freed, readiness is no longer
        forced off. A hang ends by itself, a crash with the process."""
        await self._call("DELETE", "/chaos")


def over_http(client: httpx.AsyncClient, url: str, *, timeout: float = 5.0) -> Send:
    """The transport to a process's own URL (`http://127.0.0.1:<its port>`), through `client`."""

    async def send(
        method: str, path: str, body: Mapping[str, Any] | None, headers: Mapping[str, str]
    ) -> tuple[int, str]:
        try:
            response = await client.request(method, url + path, json=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise ChaosRefused(f"{url} does not answer ({type(exc).__name__})") from None
        return response.status_code, response.text

    return send
