"""`make e2e-containers`: the crash story on a real container engine, with the project's own images.

    python -m shop_load.containers [--rate 4] [--leak-mb-per-second 40] [--out .data/e2e]

1. The running container engine (`engine.Engine`; on the CI machine `.ci/prepare-containers` starts it), a Python
   base image (`BASE_IMAGE`, the slim Python image, or the local Debian bookworm base that script builds where no
   registry answers), and every service image built with the project's Dockerfile through `shop_devtools.images`
   (BuildKit, the host's CA bundle as the `ca` secret).
2. PostgreSQL as a container on a named volume, run as the StatefulSet runs it (`shop_load.containers_db`),
   and the four services as containers with what the Kubernetes manifests give them (read from the rendered kind
   overlay: memory limit, user, plain settings), a read-only root filesystem, no capabilities and
   `--restart always`; two payment containers, storefront routing to both.
3. The drill's paced customers (`shop_load.customers`) check out through storefront, retrying with their
   Idempotency-Key; one payment container is made to leak; its liveness turns 503, the kernel OOM-kills it at the
   memory limit, the engine restarts it, it becomes ready again.
4. Once that has recovered, with the customers still checking out, PostgreSQL's server process is SIGKILLed; the
   engine restarts its container, the services turn unready and ready again, the payments the crash left pending
   are finished (`containers_db.database_fault`). The times of each step of both faults and what the customers
   saw are printed and written as JSON.
5. The drill's invariants hold (`shop_load.invariants`: every answered payment stored once with its status, one
   payment per key, stock + held + sold unchanged), below the API the provider charged every payment once, and
   a new database container on the volume finds every payment.
Everything it started (containers, the volume) is stopped and removed at the end, also on failure. Exit 0 when
every check holds; exit 0 with a printed reason, naming what to do, when no engine answers or it has no base image.
"""

import argparse
import asyncio
import functools
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from shop_devtools.engine import Engine, EngineUnavailable
from shop_devtools.images import image_name
from shop_devtools.pg import free_port
from shop_devtools.quantities import memory_bytes
from shop_devtools.workspace import private_key_pem, project_version, repository_root
from shop_load import containers_db
from shop_load.containers_db import DatabaseContainer, EngineEvents, Outage
from shop_load.customers import Shoppers
from shop_load.invariants import Ledger, inventory, verify

SERVICES = ("catalog", "users", "payment", "storefront")
DATABASE_USERS = ("catalog", "users", "payment-a", "payment-b")
"""The containers that need the database to be ready (storefront does not)."""
OVERLAY = "k8s/overlays/kind"
SECRET_OR_ROUTING = frozenset({"HOST", "PORT", "DATABASE_URL", "CHAOS_TOKEN", "CHAOS_ENABLED", "USERS_JWT_PRIVATE_KEY"})
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ANSWERED = frozenset({"captured", "declined", "out_of_stock"})
"""A checkout's final answers; `failed` (gave up) and `rejected` are not."""
PREFIX = "rs-e2e"


@dataclass(frozen=True)
class ContainerSpec:
    """What the manifests run a service with, as far as a container engine can apply it."""

    service: str
    memory_limit_bytes: int
    run_as_user: int
    env: dict[str, str]


def container_specs(documents: list[dict[str, Any]]) -> dict[str, ContainerSpec]:
    """The four services' container settings from rendered manifests (Deployments and their ConfigMaps)."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in documents if d.get("kind") == "ConfigMap"}
    specs = {}
    for deployment in (d for d in documents if d.get("kind") == "Deployment"):
        name = deployment["metadata"]["labels"].get("app.kubernetes.io/name")
        if name not in SERVICES:
            continue
        pod = deployment["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == name)
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(config_maps[source["configMapRef"]["name"]])
        env.update({e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e})
        user = container.get("securityContext", {}).get("runAsUser") or pod.get("securityContext", {})["runAsUser"]
        specs[name] = ContainerSpec(
            service=name,
            memory_limit_bytes=memory_bytes(container["resources"]["limits"]["memory"]),
            run_as_user=int(user),
            env={k: v for k, v in env.items() if k not in SECRET_OR_ROUTING and not k.endswith("_URL")},
        )
    missing = set(SERVICES) - specs.keys()
    if missing:
        raise ValueError(f"the rendered manifests have no Deployment for {sorted(missing)}")
    return specs


def render_manifests(root: Path) -> list[dict[str, Any]]:
    subprocess.run(
        [sys.executable, "-m", "shop_devtools.cluster", "secrets"], cwd=root, check=True, capture_output=True
    )
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(root / OVERLAY)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def docker_run_argv(spec: ContainerSpec, *, name: str, image: str, port: int, env: Mapping[str, str]) -> list[str]:
    """`docker run` for one service container, as the kubelet would run it: limits, user, read-only, restarts."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=2)"
    argv = [
        "run", "--detach", "--name", name, "--network", "host",
        "--read-only", "--tmpfs", "/tmp:rw,size=16m",  # noqa: S108 - the container's own tmpfs
        "--user", f"{spec.run_as_user}:{spec.run_as_user}",
        "--memory", str(spec.memory_limit_bytes), "--memory-swap", str(spec.memory_limit_bytes),
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--restart", "always",
        "--health-cmd", f'python -c "{probe}"', "--health-interval", "2s", "--health-timeout", "2s",
        "--health-retries", "3",
    ]  # fmt: skip
    for key, value in {**spec.env, **env, "HOST": "127.0.0.1", "PORT": str(port)}.items():
        argv += ["--env", f"{key}={value}"]
    return [*argv, image]


@dataclass
class Timeline:
    injected: float | None = None
    liveness_failed: float | None = None
    unhealthy: float | None = None
    oom_killed: float | None = None
    died: float | None = None
    restarted: float | None = None
    ready_again: float | None = None
    restart_count: int = 0
    oom_killed_state: bool = False
    exit_code: int | None = None

    def relative(self) -> dict[str, float | None]:
        base = self.injected
        times = {k: v for k, v in asdict(self).items() if k not in {"restart_count", "oom_killed_state", "exit_code"}}
        return {k: None if v is None or base is None else round(v - base, 2) for k, v in times.items()}


def record_event(timeline: Timeline, at: float, action: str) -> None:
    """One `docker events` action of the leaking container onto the timeline (oom, die, start, health status)."""
    if timeline.injected is None or at < timeline.injected:
        return
    if action == "oom" and timeline.oom_killed is None:
        timeline.oom_killed = at
    elif action == "die" and timeline.died is None:
        timeline.died = at
    elif action == "start" and timeline.restarted is None:
        timeline.restarted = at
    elif action == "health_status: unhealthy" and timeline.unhealthy is None:
        timeline.unhealthy = at


class Shop:
    """The containers and the database of one run."""

    def __init__(self, engine: Engine, database: DatabaseContainer, urls: dict[str, str], token: str) -> None:
        self.engine = engine
        self.database = database
        self.database_urls = urls
        self.chaos_token = token
        self.ports = {name: free_port() for name in ("storefront", "catalog", "users", "payment-a", "payment-b")}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, specs: Mapping[str, ContainerSpec], version: str) -> None:
        payments = f"{self.url('payment-a')},{self.url('payment-b')}"
        common = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": self.chaos_token}
        plan = {
            "catalog": ("catalog", {"DATABASE_URL": self.database_urls["catalog"]}),
            "users": (
                "users",
                {"DATABASE_URL": self.database_urls["users"], "USERS_JWT_PRIVATE_KEY": private_key_pem()},
            ),
            "payment-a": ("payment", {}),
            "payment-b": ("payment", {}),
            "storefront": (
                "storefront",
                {
                    "STOREFRONT_CATALOG_URL": self.url("catalog"),
                    "STOREFRONT_USERS_URL": self.url("users"),
                    "STOREFRONT_PAYMENT_URL": payments,
                },
            ),
        }
        for name, (service, env) in plan.items():
            if service == "payment":
                env = {
                    "DATABASE_URL": self.database_urls["payment"],
                    "PAYMENT_CATALOG_URL": self.url("catalog"),
                    "PAYMENT_USERS_URL": self.url("users"),
                }
            argv = docker_run_argv(
                specs[service],
                name=f"{PREFIX}-{name}",
                image=image_name(service, version),
                port=self.ports[name],
                env={**common, **env},
            )
            self.engine.docker(*argv)
            print(f"e2e    | started {name} ({image_name(service, version)}) on {self.url(name)}", flush=True)

    def wait_ready(self, name: str, timeout: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if httpx.get(self.url(name) + "/ready", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        logs = self.engine.docker("logs", "--tail", "30", f"{PREFIX}-{name}", check=False)
        raise RuntimeError(f"{name} not ready after {timeout}s:\n{logs.stdout}{logs.stderr}")

    def remove(self, logs_to: Path | None = None) -> None:
        """Removes every container of the run, keeping their logs in `logs_to`."""
        if logs_to is not None:
            for name in self.ports:
                logs = self.engine.docker("logs", f"{PREFIX}-{name}", check=False)
                (logs_to / f"{name}.log").write_text(logs.stdout + logs.stderr)
        remove_containers(self.engine, [f"{PREFIX}-{name}" for name in self.ports])


def remove_containers(engine: Engine, names: list[str] | None = None) -> None:
    """Removes the named containers, or every container of a run (`PREFIX-...`: leftovers of an interrupted one)."""
    if names is None:
        names = engine.docker("ps", "-aq", "--filter", f"name={PREFIX}-", check=False).stdout.split()
    if names:
        engine.docker("rm", "--force", *names, check=False)


def check_container_hardening(shop: Shop, specs: Mapping[str, ContainerSpec]) -> list[str]:
    """Every container runs as its non-root user with a read-only root filesystem, and answers its probes."""
    problems = []
    for name in shop.ports:
        container, service = f"{PREFIX}-{name}", name.split("-")[0]
        uid = shop.engine.docker("exec", container, "id", "-u", check=False).stdout.strip()
        if uid != str(specs[service].run_as_user) or uid == "0":
            problems.append(f"{name} runs as uid {uid!r}")
        if shop.engine.docker("exec", container, "touch", "/probe-write", check=False).returncode == 0:
            problems.append(f"{name} can write its root filesystem")
        for probe in ("/healthz", "/ready"):
            status = httpx.get(shop.url(name) + probe, timeout=2).status_code
            if status != 200:
                problems.append(f"{name} {probe} answered {status}")
    return problems


@dataclass
class Traffic:
    """What the paced customers did (the drill's own `Shoppers`), and the ledger the invariants are checked from."""

    shoppers: Shoppers
    ledger: Ledger


Then = Callable[[Callable[[], float]], Awaitable[None]]
"""A further fault, run with the customers' clock once the leak has recovered, while they go on checking out."""


async def scenario(shop: Shop, args: argparse.Namespace, timeline: Timeline, then: Then | None = None) -> Traffic:
    """The drill's paced customers through storefront; the leak after the warm-up; after recovery + cool-down,
    `then` and another cool-down; stop."""
    base, victim = shop.url("storefront"), shop.url("payment-a")
    started = time.monotonic()
    shoppers = Shoppers(base, clock=lambda: time.monotonic() - started, rate=args.rate, retry_for=args.patience)
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await shoppers.prepare(client, 12)
        ledger = Ledger(
            base_url=base,
            started_at=datetime.now(UTC).isoformat(),
            reservation_ttl_seconds=300,
            customers=shoppers.customers,
            checkouts=shoppers.checkouts,
            initial_inventory=await inventory(client),
        )
        traffic = asyncio.create_task(shoppers.run(client, stop))
        traffic_started, reported = time.monotonic(), 0.0  # the warm-up counts from the first checkout
        while True:
            elapsed = time.monotonic() - traffic_started
            if timeline.injected is None and elapsed >= args.warmup:
                response = await client.post(
                    victim + "/chaos/leak",
                    json={"mb_per_second": args.leak_mb_per_second},
                    headers={"X-Chaos-Token": shop.chaos_token},
                )
                response.raise_for_status()
                timeline.injected = time.time()
                print(f"e2e    | leak injected into payment-a at {args.leak_mb_per_second} MB/s", flush=True)
            try:
                healthz = (await client.get(victim + "/healthz", timeout=1)).status_code
                ready = (await client.get(victim + "/ready", timeout=1)).status_code
            except httpx.HTTPError:
                healthz = ready = 0
            if timeline.injected and timeline.liveness_failed is None and healthz == 503:
                timeline.liveness_failed = time.time()
            if timeline.restarted and timeline.ready_again is None and ready == 200:
                timeline.ready_again = time.time()
            if time.time() - (timeline.ready_again or float("inf")) >= args.cooldown or elapsed >= args.max_seconds:
                break
            if elapsed - reported >= 5:
                reported = elapsed
                answered = sum(1 for c in shoppers.checkouts if c.outcome in ANSWERED)
                print(f"e2e    | {elapsed:5.1f}s  checkouts {len(shoppers.checkouts)}  answered {answered}", flush=True)
            await asyncio.sleep(0.25)
        if then is not None and timeline.ready_again is not None:
            await then(shoppers.clock)
            await asyncio.sleep(args.cooldown)
        stop.set()
        await traffic
    return Traffic(shoppers, ledger)


def check_provider_books(database_url: str) -> list[str]:
    """Below the API: no payment left pending, and the provider charged each payment once, as it was recorded."""
    problems = []
    with psycopg.connect(database_url) as conn:
        deadline = time.monotonic() + 20
        while conn.execute("SELECT count(*) FROM payments WHERE status = 'pending'").fetchone() != (0,):
            if time.monotonic() > deadline:
                problems.append("payments still pending 20 s after the run")
                break
            time.sleep(0.5)
        rows = conn.execute(
            "SELECT p.id::text, p.status, c.outcome, p.amount_cents = c.amount_cents"
            " FROM payments p LEFT JOIN provider_charges c ON c.payment_id = p.id"
        ).fetchall()
    for payment_id, status, outcome, same_amount in rows:
        if (status, outcome) not in {("captured", "approved"), ("declined", "declined")} or not same_amount:
            problems.append(f"payment {payment_id} is {status} but the provider says {outcome}")
    return problems


def check_invariants(shop: Shop, traffic: Traffic) -> list[str]:
    """The drill's invariants against the API, and the provider's books in the database."""
    problems = check_provider_books(shop.database_urls["payment"])
    for result in asyncio.run(verify(traffic.ledger)):
        problems += [f"{result.name}: {problem}" for problem in result.problems]
    return problems


def build_images(engine: Engine, base_image: str, root: Path) -> None:
    env = {
        **os.environ,
        "BASE_IMAGE": base_image,
        "DOCKER_BUILD_NETWORK": "host",
        "DOCKER_BUILDKIT": "1",
        "PATH": f"{engine.client_dir}:{os.environ.get('PATH', '')}",
    }
    if CA_BUNDLE.exists():
        env["CA_BUNDLE"] = str(CA_BUNDLE)
    print(f"e2e    | building the images on {base_image}", flush=True)
    subprocess.run([sys.executable, "-m", "shop_devtools.images"], cwd=root, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="e2e-containers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=4.0, help="checkouts per second")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds of traffic before the leak")
    parser.add_argument("--cooldown", type=float, default=8.0, help="seconds of traffic after recovery")
    parser.add_argument("--leak-mb-per-second", type=float, default=40.0)
    parser.add_argument("--patience", type=float, default=30.0, help="how long a customer retries a checkout")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="the scenario's time limit")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default .data/e2e)")
    args = parser.parse_args(argv)
    root = repository_root()
    workdir = args.out or root / ".data" / "e2e"
    workdir.mkdir(parents=True, exist_ok=True)
    begun = time.monotonic()
    try:
        engine = Engine.find()
        base_image = engine.base_image()
    except EngineUnavailable as exc:
        print(f"e2e    | SKIPPED: {exc}", flush=True)
        return 0
    timeline, outage = Timeline(), Outage()
    with ExitStack() as cleanup:
        documents = render_manifests(root)
        specs = container_specs(documents)
        version = project_version(root)
        build_images(engine, base_image, root)
        database_image = containers_db.image_name(version)
        ca_bundle = CA_BUNDLE if CA_BUNDLE.exists() else None
        containers_db.build_image(engine, image=database_image, base_image=base_image, root=root, ca_bundle=ca_bundle)
        remove_containers(engine)
        database = DatabaseContainer(engine, containers_db.database_spec(documents), database_image)
        urls = cleanup.enter_context(containers_db.container_postgres(database, workdir))
        shop = Shop(engine, database, urls, secrets.token_urlsafe(24))
        cleanup.callback(shop.remove, workdir)
        shop.start(specs, version)
        for name in shop.ports:
            shop.wait_ready(name)
        problems = check_container_hardening(shop, specs) + containers_db.check_hardening(database)
        events = EngineEvents(engine, f"{PREFIX}-payment-a", functools.partial(record_event, timeline))
        cleanup.callback(events.stop)

        async def database_fault(clock: Callable[[], float]) -> None:
            nonlocal outage
            watched = {name: shop.url(name) for name in shop.ports}
            outage = await containers_db.database_fault(
                database, payment_url=urls["payment"], services=watched, clock=clock
            )

        traffic = asyncio.run(scenario(shop, args, timeline, then=database_fault))
        state = json.loads(engine.docker("inspect", f"{PREFIX}-payment-a").stdout)[0]
        timeline.restart_count = state["RestartCount"]
        timeline.oom_killed_state = state["State"]["OOMKilled"]
        problems += check_invariants(shop, traffic)
        database_report = containers_db.summarize_outage(
            outage, traffic.shoppers.checkouts, services=DATABASE_USERS, stays_ready=("storefront",)
        )
        database_report["new_container"], lost = containers_db.check_volume_keeps_data(
            database, urls["payment"], workdir
        )
        database_report["problems"] += lost
        problems += [f"database outage: {problem}" for problem in database_report["problems"]]
        report = summarize(traffic.shoppers, timeline, problems, time.monotonic() - begun)
        report["storefront_retries_to_payment"] = gateway_retries(shop.url("storefront"))
        report["database_outage"] = database_report
        (workdir / "database-outage.json").write_text(json.dumps(asdict(outage), indent=1))
        (workdir / "report.json").write_text(json.dumps(report, indent=2))
        print_summary(report)
        containers_db.print_outage_summary(database_report)
        print(f"e2e    | report written to {workdir / 'report.json'} ({report['run_seconds']} s)", flush=True)
        return 0 if not report["problems"] else 1
    return 1


def gateway_retries(storefront: str) -> float:
    """Requests storefront sent again to another payment replica (connection refused, 502, 503)."""
    for line in httpx.get(storefront + "/metrics").text.splitlines():
        if line.startswith('shop_gateway_retries_total{upstream="payment"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def print_summary(report: dict[str, Any]) -> None:
    print("\ncontainer proof: leak in one of two payment containers, under paced checkouts", flush=True)
    for step, seconds in report["seconds_after_injection"].items():
        print(f"  {step:<16} {'-' if seconds is None else f'+{seconds:.2f} s'}", flush=True)
    print(f"  restarts         {report['restart_count']}", flush=True)
    rate = report["customer_success_rate"]
    print(f"  checkouts        {report['answered']}/{report['checkouts']} answered ({rate:.1%})", flush=True)
    print(f"  gateway retries  {report['storefront_retries_to_payment']:.0f} (storefront to the other replica)")
    for problem in report["problems"] or ["none: every invariant holds"]:
        print(f"  problem          {problem}", flush=True)


def summarize(shoppers: Shoppers, timeline: Timeline, problems: list[str], seconds: float) -> dict[str, Any]:
    checkouts = shoppers.checkouts
    answered = [c for c in checkouts if c.outcome in ANSWERED]
    first_try = [c for c in answered if c.attempts == 1]
    killed_or_unhealthy = timeline.oom_killed or timeline.died or timeline.unhealthy or timeline.liveness_failed
    if killed_or_unhealthy is None:
        problems.append("the leaking container was never OOM-killed nor unhealthy")
    if timeline.restart_count < 1:
        problems.append("the leaking container was never restarted")
    if timeline.ready_again is None:
        problems.append("the restarted container never became ready again")
    return {
        "seconds_after_injection": timeline.relative(),
        "restart_count": timeline.restart_count,
        "checkouts": len(checkouts),
        "answered": len(answered),
        "customer_success_rate": round(len(answered) / len(checkouts), 4) if checkouts else None,
        "first_attempt_success_rate": round(len(first_try) / len(checkouts), 4) if checkouts else None,
        "retried_checkouts": sum(1 for c in checkouts if c.attempts > 1),
        "problems": problems,
        "run_seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
