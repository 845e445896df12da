"""What the drill leaves behind: the settings its report records, the report, ledger and timeline written into
the output folder, the summary printed (and compared with the other profile's report when there is one), and
the invariants' verdict as the exit status.
"""

from collections.abc import Sequence
from pathlib import Path

from shop_load.core.drill_args import DrillConfig, fault_body
from shop_load.core.records import InvariantResult
from shop_load.generators.browsing import Browsing
from shop_load.invariants.ledger import Ledger
from shop_load.report import plot
from shop_load.report.model import DrillReport, ReportError, Settings, read_report
from shop_load.report.text import compare, invariants_table, summary
from shop_load.targets.choose import LocalTarget
from shop_load.targets.target import Target

EXIT_OK, EXIT_INVARIANT, EXIT_CANNOT_RUN = 0, 1, 2


def report_paths(out: Path, profile: str) -> dict[str, Path]:
    stem = out / f"drill-{profile}"
    return {"json": stem.with_suffix(".json"), "png": stem.with_suffix(".png"), "ledger": Path(f"{stem}.ledger.json")}


def print_invariants(results: Sequence[InvariantResult]) -> None:
    print(invariants_table(results))
    for result in results:
        for problem in result.problems[1:]:
            print(f"  {result.name}: {problem}")


def verdict(results: Sequence[InvariantResult] | None) -> int:
    """The exit status: `EXIT_INVARIANT` when an invariant failed (said, with its name), else `EXIT_OK`."""
    if failed := [r.name for r in results or () if not r.ok]:
        print(f"\nINVARIANT FAILED: {', '.join(failed)}")
        return EXIT_INVARIANT
    return EXIT_OK


ORCHESTRATORS = {"kubernetes": "kubernetes", "containers": "container engine"}
"""What restarts a payment process on each target; on make run its launcher (`shop_devtools.kubelet`)."""


def drill_settings(config: DrillConfig, target: Target, browse: Browsing | None) -> Settings:
    """The drill's options and what they came to on `target`, as its report records them."""
    under_launcher = isinstance(target, LocalTarget) and target.launcher_pid is not None
    mode, restarter = target.mode, "make run" if under_launcher else None
    return Settings(
        **config.model_dump(exclude={"browse_connections"}),
        mode=mode,
        fault_phase_s=config.fault_seconds(mode),
        fault_body=fault_body(config, mode),
        orchestrator=ORCHESTRATORS.get(mode, restarter),
        payment_urls=[r.url for r in target.replicas] if isinstance(target, LocalTarget) else [],
        browse_connections=browse.connections if browse is not None else None,
    )


def write_results(config: DrillConfig, report: DrillReport, ledger: Ledger) -> int:
    """Writes the report, ledger and timeline into `config.out`, prints the summary (and the comparison with the
    other profile's report there) and returns the exit status: the invariants' verdict."""
    paths = report_paths(config.out, config.profile)
    config.out.mkdir(parents=True, exist_ok=True)
    paths["json"].write_text(report.model_dump_json(indent=1) + "\n")
    ledger.save(paths["ledger"])
    plot.render(report, paths["png"])
    print(summary(report))
    print(f"\nreport: {paths['json']}\ntimeline: {paths['png']}\nledger: {paths['ledger']}")
    other = report_paths(config.out, "fragile" if config.profile == "resilient" else "resilient")["json"]
    if other.exists():
        try:
            both = sorted([report, read_report(other, DrillReport)], key=lambda r: r.settings.profile, reverse=True)
            print("\n" + compare(both))
        except ReportError as exc:  # a report of an older drill: said, not compared
            print(f"\nnot compared: {exc}")
    return verdict(report.invariants)
