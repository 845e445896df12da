"""The recovery page on Kubernetes, from a fake API server (no cluster runs here) and fake pods: what it shows of
pods, restarts and their reasons (an OOM kill, a failed liveness), readiness and Events; what it says when it has no
token or no Role; and that every call it makes is one the recovery-view Role allows, and every grant is used."""

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from shop_storefront.main import create_app
from shop_storefront.settings import StorefrontSettings
from tests.conftest import AS_OPERATOR, CREDENTIALS, client_for, running
from tests.k8s.test_recovery_view import authorizes, recovery_view_rules

TOKEN = "service-account-token-of-the-storefront"
CHAOS_TOKEN = "cluster-chaos-token-0123456789"
MIB = 2**20


@dataclass
class Served:
    """A fake HTTP server in a thread, answering with `answer(method, path, query, headers)`."""

    answer: Callable[[str, str, dict[str, list[str]], dict[str, str]], tuple[int, object]]
    seen: list[tuple[str, str, dict[str, list[str]], dict[str, str]]] = field(default_factory=list)
    port: int = 0

    def __enter__(self) -> "Served":
        served = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                parts = urlsplit(self.path)
                request = (self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()))
                served.seen.append(request)
                status, body = served.answer(*request)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def a_pod(ready: bool, memory_mib: int) -> Callable[..., tuple[int, object]]:
    """A payment container as the storefront reaches it on the pod's IP: its probes and its `/metrics`."""

    def answer(method: str, path: str, query: object, headers: dict[str, str]) -> tuple[int, object]:
        if path == "/ready":
            return (200, {"status": "ready"}) if ready else (503, {"status": "unready", "reason": "forced unready"})
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path == "/metrics":
            return 200, (
                f"shop_live 1.0\nshop_in_rotation {int(ready)}\n"
                f"shop_resident_memory_bytes {memory_mib * MIB}\nshop_memory_budget_bytes {154 * MIB}\n"
                f'shop_memory_limit_bytes {256 * MIB}\nshop_payments_total{{status="captured"}} 42.0\n'
                "process_start_time_seconds 1.7e9\n"
            )
        if path == "/chaos/leak" and method == "POST":
            return (202, {"leak": {"active": True}}) if headers.get("X-Chaos-Token") == CHAOS_TOKEN else (403, {})
        return 404, {}

    return answer


def container_status(restarts: int, terminated: dict[str, Any] | None, ready: bool) -> dict[str, Any]:
    last = {"terminated": terminated} if terminated else {}
    return {"name": "payment", "restartCount": restarts, "lastState": last, "ready": ready, "state": {"running": {}}}


def pod(name: str, service: str, port: int, *, ready: bool, status: dict[str, Any] | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": "resilient-shop"}
    container: dict[str, Any] = {"name": service, "ports": [{"name": "http", "containerPort": port}]}
    container["resources"] = {"limits": {"memory": "256Mi"}}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [container]},
        "status": {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": str(ready)}],
            "containerStatuses": [status or container_status(0, None, ready)],
        },
    }


def event(uid: str, pod_name: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid},
        "involvedObject": {"kind": "Pod", "name": pod_name},
        "reason": reason,
        "message": message,
        "lastTimestamp": at,
        "count": 1,
    }


@dataclass
class FakeCluster:
    api: Served
    pods: dict[str, Served]
    account: Path


def api_answer(pods: dict[str, Served], refuse: int | None) -> Callable[..., tuple[int, object]]:
    def answer(method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, object]:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"kind": "Status", "code": 401}
        if refuse:
            return refuse, {"kind": "Status", "code": refuse}
        if path == "/api/v1/namespaces/shop/pods" and query == {
            "labelSelector": ["app.kubernetes.io/part-of=resilient-shop"]
        }:
            oom = {"reason": "OOMKilled", "exitCode": 137}
            liveness = {"reason": "Completed", "exitCode": 0}
            items = [
                pod("payment-7d9f-a", "payment", pods["a"].port, ready=True, status=container_status(1, oom, True)),
                pod("payment-7d9f-b", "payment", pods["b"].port, ready=False),
                pod(
                    "payment-7d9f-c", "payment", pods["c"].port, ready=True, status=container_status(2, liveness, True)
                ),
                pod("postgres-0", "postgres", 5432, ready=True),
                pod("prometheus-5c4d", "prometheus", 9090, ready=True),
            ]
            return 200, {"kind": "PodList", "items": items}
        if path == "/api/v1/namespaces/shop/events" and query == {"fieldSelector": ["involvedObject.kind=Pod"]}:
            recent = "2099-01-01T00:00:00Z"
            return 200, {
                "kind": "EventList",
                "items": [
                    event(
                        "e1",
                        "payment-7d9f-c",
                        "Unhealthy",
                        "Liveness probe failed: HTTP probe failed with statuscode: 503",
                        recent,
                    ),
                    event(
                        "e2",
                        "payment-7d9f-c",
                        "Killing",
                        "Container payment failed liveness probe, will be restarted",
                        recent,
                    ),
                    event("e3", "payment-7d9f-a", "Pulled", "Container image already present on machine", recent),
                ],
            }
        return 404, {"kind": "Status", "code": 404}

    return answer


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FakeCluster]:
    refuse: int | None = getattr(request, "param", None)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(TOKEN)
    (account / "namespace").write_text("shop")
    with Served(a_pod(True, 120)) as a, Served(a_pod(False, 90)) as b, Served(a_pod(True, 100)) as c:
        pods = {"a": a, "b": b, "c": c}
        with Served(api_answer(pods, refuse)) as api:
            yield FakeCluster(api, pods, account)


def storefront_settings(cluster: FakeCluster, **overrides: Any) -> StorefrontSettings:
    return StorefrontSettings(
        recovery_kubernetes_api=f"http://127.0.0.1:{cluster.api.port}",
        recovery_account_dir=cluster.account,
        chaos_token=SecretStr(CHAOS_TOKEN),
        **overrides,
    )


async def look(settings: StorefrontSettings) -> tuple[dict[str, Any], dict[str, httpx.Response]]:
    """Logs in, reads the page's data, and asks for a leak in one pod through `/ops/chaos`."""
    app = create_app(settings)
    async with running(app), client_for(app, "storefront") as storefront:
        login = await storefront.post("/recovery/session", json={"credential": CREDENTIALS["OPERATOR_CREDENTIAL"]})
        assert login.status_code == 204
        state = await storefront.get("/recovery/state")
        assert state.status_code == 200, state.text
        leak = await storefront.post("/ops/chaos/payment-7d9f-a/leak", headers=AS_OPERATOR)
        again = await storefront.get("/recovery/state")
    return state.json(), {"leak": leak, "again": again}


async def test_the_page_shows_pods_restarts_with_their_reasons_readiness_and_events(cluster: FakeCluster) -> None:
    state, answers = await look(storefront_settings(cluster))

    assert (state["target"], state["blind_spot"]) == ("kubernetes", None)
    replicas = {replica["name"]: replica for replica in state["replicas"]}
    assert sorted(replicas) == ["payment-7d9f-a", "payment-7d9f-b", "payment-7d9f-c", "postgres-0"]
    oom, unready, killed = replicas["payment-7d9f-a"], replicas["payment-7d9f-b"], replicas["payment-7d9f-c"]
    assert (oom["restarts"], oom["last_reason"], oom["ready"], oom["live"]) == (1, "OOM killed", True, True)
    assert (oom["memory_bytes"], oom["budget_bytes"], oom["limit_bytes"]) == (120 * MIB, 154 * MIB, 256 * MIB)
    assert (unready["ready"], unready["ready_detail"], unready["restarts"]) == (False, "forced unready", 0)
    assert (killed["restarts"], killed["last_reason"]) == (2, "failed liveness")
    assert state["database"]["state"] == "up"
    timeline = [(e["replica"], e["kind"], e["by"]) for e in state["timeline"]]
    assert timeline == [("payment-7d9f-c", "Unhealthy", "kubernetes"), ("payment-7d9f-c", "Killing", "kubernetes")]

    assert answers["leak"].status_code == 202, answers["leak"].text
    assert [(m, p) for m, p, *_ in cluster.pods["a"].seen if p.startswith("/chaos")] == [("POST", "/chaos/leak")]
    assert not [p for _, p, *_ in cluster.pods["b"].seen + cluster.pods["c"].seen if p.startswith("/chaos")]
    assert ("payment-7d9f-a", "fault injected", "page") in [
        (e["replica"], e["kind"], e["by"]) for e in answers["again"].json()["timeline"]
    ]


async def test_every_call_the_page_makes_is_one_the_role_allows_and_every_grant_is_used(cluster: FakeCluster) -> None:
    await look(storefront_settings(cluster))
    rules = recovery_view_rules()
    calls = [(method, f"{path}?{urlencode(query, doseq=True)}") for method, path, query, _ in cluster.api.seen]
    assert calls, "the page read the cluster"
    assert all(method == "GET" for method, _ in calls), "the page never writes to the API"
    assert all(authorizes(rules, method, url) for method, url in calls), calls
    used = {(urlsplit(url).path.rsplit("/", 1)[-1], "list") for _, url in calls}
    grants = {(resource, verb) for rule in rules for resource in rule["resources"] for verb in rule["verbs"]}
    assert used == grants == {("pods", "list"), ("events", "list")}


@pytest.mark.parametrize("cluster", [403], indirect=True)
async def test_without_the_role_the_page_says_what_it_cannot_see(cluster: FakeCluster) -> None:
    state, _ = await look(storefront_settings(cluster))
    assert state["replicas"] == []
    assert "recovery-view Role is missing" in state["blind_spot"]


async def test_without_a_token_the_page_sees_only_the_services_and_says_so(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    (cluster.account / "token").unlink()
    state, answers = await look(storefront_settings(cluster))
    assert state["target"] == "kubernetes"
    assert "no ServiceAccount token" in state["blind_spot"]
    assert "recovery-view component" in state["blind_spot"]
    assert cluster.api.seen == [], "without a token the API is never called"
    assert answers["leak"].status_code == 404, "a pod it cannot see is no target"
