"""`make e2e-containers`: the crash story on a real container engine, with the project's own images.

    python -m shop_load.containers [--rate 4] [--leak-mb-per-second 40] [--out .data/e2e]

1. The running container engine (`engine.Engine`; on the CI machine `.ci/prepare-containers` starts it), a Python
   base image (`BASE_IMAGE`, the slim Python image, or the local Debian bookworm base that script builds where no
   registry answers), and every service image built with the project's Dockerfile through `shop_devtools.images`
   (BuildKit, the host's CA bundle as the `ca` secret).
2. PostgreSQL as a container on a named volume, run as the StatefulSet runs it (`shop_load.containers.db`),
   and the four services as containers with what the Kubernetes manifests give them (read from the rendered kind
   overlay: memory limit, user, plain settings), a read-only root filesystem, no capabilities and
   `--restart always`; two payment containers, storefront routing to both; fresh credentials of the shop's own
   for this run, each container getting the ones its service reads.
3. As the operator, through the storefront's `/ops/` (`shop_load.core.ops`): the stock raised for the run
   (`POST /ops/restock`, checked in the inventory it answers) and the inventory read. Then the drill's paced
   customers (`shop_load.core.customers`) check out through storefront, retrying with their Idempotency-Key; one
   payment container is made to leak; its liveness turns 503, the kernel OOM-kills it at the memory limit, the
   engine restarts it, it becomes ready again.
4. Once that has recovered, with the customers still checking out, PostgreSQL's server process is SIGKILLed; the
   engine restarts its container, the services turn unready and ready again, the payments the crash left pending
   are finished (`db_fault.database_fault`). The times of each step of both faults and what the
   customers saw are printed and written as JSON.
5. The drill's invariants hold (`shop_load.invariants`: every answered payment stored once with its status, one
   payment per key, stock + held + sold unchanged, read at `/ops/inventory`), below the API the provider charged
   every payment once, and a new database container on the volume finds every payment.
Everything it started (containers, the volume) is stopped and removed at the end, also on failure. Exit 0 when
every check holds; exit 0 with a printed reason, naming what to do, when no engine answers or it has no base image.
"""

import argparse
import asyncio
import functools
import json
import secrets
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from shop_devtools.credentials import new_credentials
from shop_devtools.engine import Engine, EngineUnavailable
from shop_devtools.workspace import project_version, repository_root
from shop_load.containers import db, db_fault, db_outage
from shop_load.containers.db import DatabaseContainer
from shop_load.containers.db_fault import EngineEvents
from shop_load.containers.db_outage import Outage
from shop_load.containers.leak import Timeline, check_invariants, record_event, scenario
from shop_load.containers.shop import (
    CA_BUNDLE,
    PREFIX,
    Shop,
    build_images,
    check_container_hardening,
    container_specs,
    remove_containers,
    render_manifests,
)
from shop_load.core.customers import Shoppers
from shop_load.core.records import FINAL_OUTCOMES

DATABASE_USERS = ("catalog", "users", "payment-a", "payment-b")
"""The containers that need the database to be ready (storefront does not)."""


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
        database_image = db.image_name(version)
        ca_bundle = CA_BUNDLE if CA_BUNDLE.exists() else None
        db.build_image(engine, image=database_image, base_image=base_image, root=root, ca_bundle=ca_bundle)
        remove_containers(engine)
        database = DatabaseContainer(engine, db.database_spec(documents), database_image)
        urls = cleanup.enter_context(db.container_postgres(database, workdir))
        shop = Shop(engine, database, urls, secrets.token_urlsafe(24), new_credentials())
        cleanup.callback(shop.remove, workdir)
        shop.start(specs, version)
        for name in shop.ports:
            shop.wait_ready(name)
        problems = check_container_hardening(shop, specs) + db.check_hardening(database)
        events = EngineEvents(engine, f"{PREFIX}-payment-a", functools.partial(record_event, timeline))
        cleanup.callback(events.stop)

        async def database_fault(clock: Callable[[], float]) -> None:
            nonlocal outage
            watched = {name: shop.url(name) for name in shop.ports}
            outage = await db_fault.database_fault(database, payment_url=urls["payment"], services=watched, clock=clock)

        traffic = asyncio.run(scenario(shop, args, timeline, then=database_fault))
        state = json.loads(engine.docker("inspect", f"{PREFIX}-payment-a").stdout)[0]
        timeline.restart_count = state["RestartCount"]
        timeline.oom_killed_state = state["State"]["OOMKilled"]
        problems += check_invariants(shop, traffic)
        database_report = db_outage.summarize_outage(
            outage, traffic.shoppers.checkouts, services=DATABASE_USERS, stays_ready=("storefront",)
        )
        database_report["new_container"], lost = db_fault.check_volume_keeps_data(database, urls["payment"], workdir)
        database_report["problems"] += lost
        problems += [f"database outage: {problem}" for problem in database_report["problems"]]
        report = summarize(traffic.shoppers, timeline, problems, time.monotonic() - begun)
        report["storefront_retries_to_payment"] = gateway_retries(shop.url("storefront"))
        report["database_outage"] = database_report
        (workdir / "database-outage.json").write_text(json.dumps(asdict(outage), indent=1))
        (workdir / "report.json").write_text(json.dumps(report, indent=2))
        print_summary(report)
        db_outage.print_outage_summary(database_report)
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
    answered = [c for c in checkouts if c.outcome in FINAL_OUTCOMES]
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
