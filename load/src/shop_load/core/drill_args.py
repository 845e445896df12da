"""The drill's command line: its options and their defaults, the faults it knows, and the body each chaos fault
is sent with.
"""

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shop_devtools.chaos import LIVENESS_LEAK_MIB_PER_SECOND, OOM_LEAK_MIB_PER_SECOND, leak_body
from shop_devtools.topology import BY_NAME, SHOP_URL

DEFAULTS = {"local": {"duration": 30.0}, "kubernetes": {"duration": 180.0}}
CHAOS_FAULTS = ("leak", "hang", "crash")
"""Faults sent to one payment replica's chaos endpoint; the others act on the whole Deployment or the database."""
FAULTS = (*CHAOS_FAULTS, "rollout", "database")
LAUNCHER_FAULTS = frozenset({"crash", "rollout"})
"""Locally, make run's launcher does what the ReplicaSet would: starts the process again."""
SALE_CHECKOUTS_PER_SECOND = 50.0
LOCAL_LEAK_MB_PER_SECOND = 10.0
"""Locally there is no memory limit, only the budget: a faster leak keeps the drill short."""
SALE_BROWSES_PER_SECOND = 300.0
MAX_IN_FLIGHT = 256


class DrillError(Exception):
    """The drill cannot run; the message says why and what to do."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="shop-drill",
        description="The crash drill: customers pay while one payment pod (or the local process) fails.",
    )
    parser.add_argument("--url", help=f"the storefront (default: $SHOP_URL or {SHOP_URL})")
    parser.add_argument(
        "--rate",
        type=float,
        default=SALE_CHECKOUTS_PER_SECOND,
        help=f"checkouts started per second (default {SALE_CHECKOUTS_PER_SECOND:g}, a sale)",
    )
    parser.add_argument(
        "--browse-rate",
        type=float,
        default=SALE_BROWSES_PER_SECOND,
        help=f"catalog GETs per second beside the checkouts, sent by wrk (default {SALE_BROWSES_PER_SECOND:g}; "
        "0: none, and no wrk needed)",
    )
    parser.add_argument(
        "--browse-connections", type=int, help="wrk's kept-alive connections (default: half the browse rate)"
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=MAX_IN_FLIGHT,
        help=f"checkouts in flight at most; a tick that finds them all busy starts none and is reported "
        f"(default {MAX_IN_FLIGHT})",
    )
    parser.add_argument("--customers", type=int, default=8, help="customers registered beforehand (default 8)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of traffic before the fault")
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds the fault phase may last: with a cluster it ends earlier once the pod is Ready again "
        "(default 180); locally the fault is cleared after it (default 30)",
    )
    parser.add_argument("--cooldown", type=float, default=10.0, help="seconds of traffic after recovery")
    parser.add_argument(
        "--fault",
        choices=FAULTS,
        default="leak",
        help="leak, hang or crash: one payment replica, through its chaos endpoint; rollout: every payment replica "
        "replaced one at a time (kubectl rollout restart; locally make run's launcher); database: the PostgreSQL "
        "pod killed (cluster only)",
    )
    parser.add_argument(
        "--leak-mb-per-second",
        type=float,
        help=f"default: {LIVENESS_LEAK_MIB_PER_SECOND:g} with a cluster (liveness restarts the pod before its memory "
        f"limit; {OOM_LEAK_MIB_PER_SECOND:g} ends as OOMKilled instead), {LOCAL_LEAK_MB_PER_SECOND:g} locally",
    )
    parser.add_argument(
        "--leak-max-mb", type=int, help="cap of the leak (default: none with a cluster, 1024 MB locally)"
    )
    parser.add_argument("--hang-seconds", type=float, help="how long a hang lasts (default: the fault phase)")
    parser.add_argument("--profile", choices=("resilient", "fragile"), default=os.environ.get("PROFILE", "resilient"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("DRILL_OUT") or "drill-out"))
    parser.add_argument("--chaos-token", default=os.environ.get("CHAOS_TOKEN"), help="default: $CHAOS_TOKEN")
    parser.add_argument("--retry-for", type=float, default=15.0, help="seconds a customer retries one checkout")
    parser.add_argument("--request-timeout", type=float, default=10.0)
    parser.add_argument("--declined-share", type=float, default=0.1, help="share of checkouts with a declined card")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds the checks wait for in-flight payments")
    parser.add_argument(
        "--reservation-ttl",
        type=float,
        default=float(os.environ.get("CATALOG_RESERVATION_TTL_SECONDS", 300)),
        help="catalog's reservation TTL: held stock older than this must have been returned",
    )
    parser.add_argument(
        "--restock",
        default="auto",
        help="before the drill, raise every product's stock to at least this through the storefront's "
        "POST /ops/restock, so the sale does not sell out; auto (default): only when the stock on hand would not "
        "last the planned sale; 0: never",
    )
    parser.add_argument(
        "--credentials",
        type=Path,
        metavar="FILE",
        help="an env file with the operator's OPERATOR_CREDENTIAL=..., for /ops/ (default: $OPERATOR_CREDENTIAL, "
        "else make run's <data dir>/credentials.env, which make compose-up keeps too, or on a cluster the "
        "credentials Secret)",
    )
    parser.add_argument("--no-check", action="store_true", help="skip the invariants (they can run later: --check)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--kubernetes", action="store_true", help="use the cluster (default: when one is reachable)")
    mode.add_argument("--local", action="store_true", help="use the local payment process even if a cluster is there")
    parser.add_argument(
        "--payment-url",
        help="the local payment process (default: every replica make run lists in its run.json, else "
        f"http://localhost:{BY_NAME['payment'].port})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="make run's data directory, where its run.json and credentials.env are (default: $SHOP_DATA_DIR or .data)",
    )
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--namespace", default="shop")
    parser.add_argument("--selector", default="app.kubernetes.io/name=payment")
    parser.add_argument(
        "--storefront-selector",
        default="app.kubernetes.io/name=storefront",
        help="the storefront pods whose /metrics count the browses",
    )
    parser.add_argument("--container", help="the payment container's name (default: the pod's first)")
    parser.add_argument("--deployment", default="payment", help="the Deployment the rollout fault restarts")
    parser.add_argument(
        "--database-selector", default="app.kubernetes.io/name=postgres", help="the pod the database fault kills"
    )
    parser.add_argument("--compare", nargs="+", type=Path, metavar="REPORT", help="print reports side by side")
    parser.add_argument("--check", type=Path, metavar="LEDGER", help="check the invariants of a finished drill")
    return parser.parse_args(argv)


def leak_rate(options: argparse.Namespace, mode: str) -> float:
    if options.leak_mb_per_second is not None:
        return float(options.leak_mb_per_second)
    return LOCAL_LEAK_MB_PER_SECOND if mode == "local" else LIVENESS_LEAK_MIB_PER_SECOND


def fault_body(options: argparse.Namespace, mode: str, duration: float) -> dict[str, Any] | None:
    if options.fault == "leak":
        cap = options.leak_max_mb if options.leak_max_mb is not None else (1024 if mode == "local" else None)
        return leak_body(leak_rate(options, mode), cap)
    if options.fault == "hang":
        return {"seconds": options.hang_seconds or (duration if mode == "local" else 120.0)}
    return None
