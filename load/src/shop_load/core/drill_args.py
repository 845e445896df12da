"""The drill's command line: its options (each a field of `DrillConfig`, with its default and help), parsed once
into that frozen model; the faults it knows, and the body each chaos fault is sent with.
"""

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, cast, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from shop_devtools.chaos import LIVENESS_LEAK_MIB_PER_SECOND, OOM_LEAK_MIB_PER_SECOND, leak_body
from shop_devtools.topology import BY_NAME, SHOP_URL

DEFAULTS = {"local": {"duration": 30.0}, "kubernetes": {"duration": 180.0}, "containers": {"duration": 60.0}}
Fault = Literal["leak", "hang", "crash", "rollout", "database", "database-pod"]
CHAOS_FAULTS = ("leak", "hang", "crash")
"""Faults sent to one payment replica's chaos endpoint; the others act on the whole Deployment or the database."""
DATABASE_FAULTS = ("database", "database-pod")
FAULTS: tuple[str, ...] = get_args(Fault)
LAUNCHER_FAULTS = frozenset({"crash", "rollout"})
"""Locally, make run's launcher does what the ReplicaSet would: starts the process again."""
SALE_CHECKOUTS_PER_SECOND = 50.0
LOCAL_LEAK_MB_PER_SECOND = 10.0
"""Locally there is no memory limit, only the budget: a faster leak keeps the drill short."""
SALE_BROWSES_PER_SECOND = 300.0
MAX_IN_FLIGHT = 256


class DrillError(Exception):
    """The drill cannot run; the message says why and what to do."""


def option(default: Any = None, text: str | None = None, *, env: str | None = None, **flags: Any) -> Any:
    """A field of `DrillConfig` that is the option `--<its name>`: its default (that of the environment variable
    `env` when set), its help `text`, and argparse's `flags` (metavar, nargs; `exclusive`: one of the targets)."""
    if env is None:
        return Field(default, description=text, json_schema_extra=flags)
    return Field(default_factory=lambda: os.environ.get(env) or default, description=text, json_schema_extra=flags)


class DrillConfig(BaseModel):
    """The drill's options, typed and frozen; `shop-drill --help` lists them. Only the defaults that depend on the
    target (local, a cluster, containers) are left to resolve once it is chosen: `fault_seconds`, `leak_rate` and
    `fault_body`. Which options were given is in `model_fields_set`."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    url: Annotated[str, AfterValidator(lambda url: url.rstrip("/"))] = option(
        SHOP_URL, f"the storefront (default: $SHOP_URL or {SHOP_URL})", env="SHOP_URL"
    )
    rate: float = option(
        SALE_CHECKOUTS_PER_SECOND, f"checkouts started per second (default {SALE_CHECKOUTS_PER_SECOND:g}, a sale)"
    )
    browse_rate: float = option(
        SALE_BROWSES_PER_SECOND,
        f"catalog GETs per second beside the checkouts, sent by wrk (default {SALE_BROWSES_PER_SECOND:g}; 0: none, "
        "and no wrk needed)",
    )
    browse_connections: int | None = option(None, "wrk's kept-alive connections (default: half the browse rate)")
    max_in_flight: int = option(
        MAX_IN_FLIGHT,
        f"checkouts in flight at most; a tick that finds them all busy starts none and is reported (default "
        f"{MAX_IN_FLIGHT})",
    )
    customers: int = option(8, "customers registered beforehand (default 8)")
    warmup: float = option(10.0, "seconds of traffic before the fault")
    duration: float | None = option(
        None,
        "seconds the fault phase may last: with a cluster it ends earlier once the pod is Ready again (default 180); "
        "locally the fault is cleared after it (default 30)",
    )
    cooldown: float = option(10.0, "seconds of traffic after recovery")
    fault: Fault = option(
        "leak",
        "leak, hang or crash: one payment replica, through its chaos endpoint; rollout: every payment replica "
        "replaced one at a time (kubectl rollout restart; locally make run's launcher); database: PostgreSQL crashed "
        "in its pod (pg_ctl stop -m immediate) or SIGKILLed in its container (--containers); database-pod: its pod "
        "deleted with its grace period (a cluster)",
    )
    leak_mb_per_second: float | None = option(
        None,
        f"default: {LIVENESS_LEAK_MIB_PER_SECOND:g} with a cluster (liveness restarts the pod before its memory "
        f"limit; {OOM_LEAK_MIB_PER_SECOND:g} ends as OOMKilled instead, the default with --containers), "
        f"{LOCAL_LEAK_MB_PER_SECOND:g} locally",
    )
    leak_max_mb: int | None = option(None, "cap of the leak (default: none with a cluster, 1024 MB locally)")
    hang_seconds: float | None = option(None, "how long a hang lasts (default: the fault phase)")
    profile: Literal["resilient", "fragile"] = option("resilient", env="PROFILE")
    out: Path = option("drill-out", env="DRILL_OUT")
    chaos_token: str | None = option(None, "default: $CHAOS_TOKEN", env="CHAOS_TOKEN")
    retry_for: float = option(15.0, "seconds a customer retries one checkout")
    request_timeout: float = option(10.0)
    declined_share: float = option(0.1, "share of checkouts with a declined card")
    settle: float = option(20.0, "seconds the checks wait for in-flight payments")
    reservation_ttl: float = option(
        300.0,
        "catalog's reservation TTL: held stock older than this must have been returned",
        env="CATALOG_RESERVATION_TTL_SECONDS",
    )
    restock: str = option(
        "auto",
        "before the drill, raise every product's stock to at least this through the storefront's POST /ops/restock, "
        "so the sale does not sell out; auto (default): only when the stock on hand would not last the planned "
        "sale; 0: never",
    )
    credentials: Path | None = option(
        None,
        "an env file with the operator's OPERATOR_CREDENTIAL=..., for /ops/ (default: $OPERATOR_CREDENTIAL, else "
        "make run's <data dir>/credentials.env, which make compose-up keeps too, or on a cluster the credentials "
        "Secret)",
        metavar="FILE",
    )
    no_check: bool = option(False, "skip the invariants (they can run later: --check)")
    stop_below: Annotated[float, Field(gt=0, le=1)] | None = option(
        None,
        "stop condition: the fault cleared and the sale ended once the share of the checkouts that ended in the last "
        "10 s with an answer (not given up) falls below this, 0.8 say; the exit status is then 3 (default: none)",
    )
    put_back: bool = option(False, "after the checks, put the stock the sale took back (POST /ops/restock)")
    pushgateway: str | None = option(None, "push the verdict to this Prometheus Pushgateway (job failover-drill)")
    kubernetes: bool = option(False, "use the cluster (default: when one is reachable)", exclusive=True)
    local: bool = option(False, "use the local payment process even if a cluster is there", exclusive=True)
    containers: bool = option(
        False,
        "use the shop in containers that python -m shop_load.containers up started (its state in --data-dir, "
        "default .data/containers)",
        exclusive=True,
    )
    payment_url: str | None = option(
        None,
        "the local payment process (default: every replica make run lists in its run.json, else "
        f"http://localhost:{BY_NAME['payment'].port})",
    )
    data_dir: Path | None = option(
        None, "make run's data directory, where its run.json and credentials.env are (default: $SHOP_DATA_DIR or .data)"
    )
    context: str | None = option(None, "kubeconfig context")
    namespace: str = option("shop")
    selector: str = option("app.kubernetes.io/name=payment")
    storefront_selector: str = option(
        "app.kubernetes.io/name=storefront", "the storefront pods whose /metrics count the browses"
    )
    container: str | None = option(None, "the payment container's name (default: the pod's first)")
    deployment: str = option("payment", "the Deployment the rollout fault restarts")
    database_selector: str = option("app.kubernetes.io/name=postgres", "the pod the database faults act on")
    compare: tuple[Path, ...] | None = option(None, "print reports side by side", nargs="+", metavar="REPORT")
    check: Path | None = option(None, "check the invariants of a finished drill", metavar="LEDGER")

    def fault_seconds(self, mode: str) -> float:
        """How long the fault phase may last: `--duration`, else the mode's default."""
        return self.duration if self.duration is not None else DEFAULTS[mode]["duration"]


def parse_args(argv: Sequence[str] | None = None) -> DrillConfig:
    """The options given (the others keep their defaults), validated into a `DrillConfig`; a bad value exits as
    argparse does, with the usage."""
    parser = argparse.ArgumentParser(
        prog="shop-drill",
        description="The crash drill: customers pay while one payment pod (or the local process) fails.",
        argument_default=argparse.SUPPRESS,
    )
    targets = parser.add_mutually_exclusive_group()
    for name, field in DrillConfig.model_fields.items():
        flags: dict[str, Any] = dict(cast(dict[str, Any], field.json_schema_extra))  # `option` made every field
        if field.annotation is bool:
            flags["action"] = "store_true"
        elif get_origin(field.annotation) is Literal:
            flags["choices"] = get_args(field.annotation)
        where = targets if flags.pop("exclusive", False) else parser
        where.add_argument(f"--{name.replace('_', '-')}", help=field.description, **flags)
    try:
        return DrillConfig(**vars(parser.parse_args(argv)))
    except ValidationError as exc:
        problem = exc.errors()[0]
        parser.error(f"argument --{str(problem['loc'][0]).replace('_', '-')}: {problem['msg']}")


def leak_rate(config: DrillConfig, mode: str) -> float:
    if config.leak_mb_per_second is not None:
        return config.leak_mb_per_second
    if mode == "containers":  # fast enough to outrun liveness: the kernel's OOM kill at the memory limit
        return OOM_LEAK_MIB_PER_SECOND
    return LOCAL_LEAK_MB_PER_SECOND if mode == "local" else LIVENESS_LEAK_MIB_PER_SECOND


def fault_body(config: DrillConfig, mode: str) -> dict[str, Any] | None:
    """What the chaos endpoint is sent for the fault (None: a fault without one)."""
    if config.fault == "leak":
        cap = config.leak_max_mb if config.leak_max_mb is not None else (1024 if mode == "local" else None)
        return leak_body(leak_rate(config, mode), cap)
    if config.fault == "hang":
        return {"seconds": config.hang_seconds or (config.fault_seconds(mode) if mode != "kubernetes" else 120.0)}
    return None
