"""What the drill leaves behind: the settings its report records, the report, ledger and timeline written into
the output folder, the summary printed (and compared with the other profile's report when there is one), and
the invariants' verdict as the exit status.
"""

import argparse
import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shop_load.core.drill_args import LAUNCHER_FAULTS, fault_body
from shop_load.core.records import InvariantResult
from shop_load.generators.browsing import Browsing
from shop_load.invariants.ledger import Ledger
from shop_load.report import plot
from shop_load.report.text import compare, summary, table
from shop_load.targets.choose import LocalTarget
from shop_load.targets.target import Target

EXIT_OK, EXIT_INVARIANT, EXIT_CANNOT_RUN = 0, 1, 2


def report_paths(out: Path, profile: str) -> dict[str, Path]:
    stem = out / f"drill-{profile}"
    return {"json": stem.with_suffix(".json"), "png": stem.with_suffix(".png"), "ledger": Path(f"{stem}.ledger.json")}


def print_invariants(results: Sequence[InvariantResult]) -> None:
    rows = [("PASS" if r.ok else "FAIL", r.name, r.detail) for r in results]
    print(table(rows, ("", "invariant", "")))
    for result in results:
        for problem in result.problems[1:]:
            print(f"  {result.name}: {problem}")


def failed_names(results: Sequence[InvariantResult]) -> list[str]:
    return [r.name for r in results if not r.ok]


def drill_settings(
    options: argparse.Namespace, target: Target, mode: str, duration: float, base_url: str, browse: Browsing | None
) -> dict[str, Any]:
    """The settings of this drill, as its report records them."""
    return {
        "profile": options.profile,
        "mode": mode,
        "fault": options.fault,
        "fault_body": fault_body(options, mode, duration),
        "url": base_url,
        "payment_url": ",".join(r.url for r in target.replicas) if isinstance(target, LocalTarget) else None,
        "namespace": options.namespace if mode == "kubernetes" else None,
        "rate": options.rate,
        "browse_rate": options.browse_rate,
        "browse_connections": browse.connections if browse is not None else None,
        "max_in_flight": options.max_in_flight,
        "customers": options.customers,
        "warmup_s": options.warmup,
        "duration_s": duration,
        "cooldown_s": options.cooldown,
        "retry_for_s": options.retry_for,
        "reservation_ttl_s": options.reservation_ttl,
        "restock": str(options.restock),
        "orchestrator": "kubernetes"
        if mode == "kubernetes"
        else "make run"
        if options.fault in LAUNCHER_FAULTS
        else None,
    }


def write_results(
    options: argparse.Namespace, report: dict[str, Any], ledger: Ledger, results: Sequence[InvariantResult] | None
) -> int:
    """Writes the report, ledger and timeline into `options.out`, prints the summary and returns the exit status."""
    paths = report_paths(options.out, options.profile)
    options.out.mkdir(parents=True, exist_ok=True)
    paths["json"].write_text(json.dumps(report, indent=1) + "\n")
    ledger.save(paths["ledger"])
    plot.render(report, paths["png"])
    print(summary(report))
    print(f"\nreport: {paths['json']}\ntimeline: {paths['png']}\nledger: {paths['ledger']}")
    other = report_paths(options.out, "fragile" if options.profile == "resilient" else "resilient")["json"]
    if other.exists():
        with contextlib.suppress(KeyError, TypeError, ValueError):  # a report of an older drill lacks some figures
            print("\n" + compare([json.loads(p.read_text()) for p in sorted([paths["json"], other], reverse=True)]))
    if results is not None and (failed := failed_names(results)):
        print(f"\nINVARIANT FAILED: {', '.join(failed)}")
        return EXIT_INVARIANT
    return EXIT_OK
