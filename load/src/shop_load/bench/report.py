"""The bench's report: the measurements and the sale's bursts as tables, the verdict on each of the bench's bars
(the sale, reads against the ceiling, the invariants after each burst), and the JSON written with `--json`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shop_load.bench import sale, sale_readiness, sale_records
from shop_load.bench.measure import Measurement
from shop_load.report.text import table

ACCEPTANCE_CAPTURED_PER_SECOND = 150.0
ACCEPTANCE_CATALOG_RATIO = 0.5
ACCEPTANCE_STOREFRONT_RATIO = 0.33


@dataclass
class Verdict:
    acceptance: int
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.text}"


@dataclass
class BenchReport:
    cores: int | None
    connections: int
    seconds: float
    measurements: list[Measurement] = field(default_factory=list)
    bursts: list[sale_records.BurstResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ratio(self, name_part: str) -> float | None:
        by_name = {m.name: m for m in self.measurements}
        for m in self.measurements:
            ceiling = by_name.get(m.ceiling or "")
            if name_part in m.name and ceiling and ceiling.throughput:
                return m.throughput / ceiling.throughput
        return None

    def verdicts(self) -> list[Verdict]:
        verdicts = []
        for name, bar in (("(catalog)", ACCEPTANCE_CATALOG_RATIO), ("(storefront)", ACCEPTANCE_STOREFRONT_RATIO)):
            found = next((m for m in self.measurements if name in m.name and m.name.startswith("GET")), None)
            ratio = self.ratio(name)
            if found is None or ratio is None:
                continue
            saturated = (
                " (a generator was saturated: the ratio is not the server's)" if found.generator_saturated else ""
            )
            verdicts.append(
                Verdict(2, ratio >= bar, f"{found.name} at {ratio:.2f}x the bare ceiling (bar {bar}x){saturated}")
            )
        if self.bursts:
            first = self.bursts[0]
            for burst in self.bursts:
                n = f"burst {burst.connections}"
                bad = burst.server_errors_but_503
                verdicts.append(
                    Verdict(1, not bad, f"{n}: no 5xx other than 503 (storefront counted {_statuses(bad) or 'none'})")
                )
                if burst is first:
                    slow = burst.checkout.timeouts
                    longest = _ms(burst.checkout.max_ms)
                    verdicts.append(
                        Verdict(
                            1,
                            slow == 0 and (burst.checkout.max_ms or 0) <= sale.ANSWER_BOUND_SECONDS * 1000,
                            f"{n}: no answer over {sale.ANSWER_BOUND_SECONDS:.0f} s"
                            f" ({slow} later, the others within {longest} ms)",
                        )
                    )
                    rate = burst.captured_per_second
                    bar = ACCEPTANCE_CAPTURED_PER_SECOND
                    verdicts.append(Verdict(1, rate >= bar, f"{n}: at least {bar:.0f} captured/s ({rate:.1f})"))
                else:
                    verdicts.append(
                        Verdict(
                            1,
                            burst.checkout.bare_503 == 0,
                            f"{n}: every 503 carries Retry-After ({burst.checkout.retry_after_503} with,"
                            f" {burst.checkout.bare_503} without)",
                        )
                    )
                    rate, then = burst.captured_per_second, first.captured_per_second
                    verdicts.append(
                        Verdict(
                            1,
                            rate >= then,
                            f"{n}: captured/s not lower than at {first.connections} ({rate:.1f} vs {then:.1f})",
                        )
                    )
                probe = burst.readiness.get("payment", sale_readiness.ProbeCount())
                verdicts.append(
                    Verdict(
                        1,
                        probe.flips == 0 and probe.polls > 0,
                        f"{n}: payment /ready 200 throughout ({probe.flips} of {probe.polls} polls not 200"
                        + (f"; first {probe.first_failure}" if probe.first_failure else "")
                        + ")",
                    )
                )
            for burst in self.bursts:
                failed = [r.name for r in burst.invariants if not r.ok]
                checked = len(burst.invariants)
                verdicts.append(
                    Verdict(
                        3,
                        checked > 0 and not failed,
                        f"burst {burst.connections}: invariants "
                        + (("failed: " + ", ".join(failed)) if failed else f"hold ({checked} checked)")
                        if checked
                        else f"burst {burst.connections}: invariants not checked",
                    )
                )
        return verdicts

    def invariants_failed(self) -> bool:
        return any(not r.ok for b in self.bursts for r in b.invariants)

    def as_json(self) -> dict[str, Any]:
        return {
            "cores": self.cores,
            "connections": self.connections,
            "seconds": self.seconds,
            "measurements": [m.as_json() for m in self.measurements],
            "ratios": {
                m.name: m.throughput / c.throughput
                for m in self.measurements
                if (c := next((x for x in self.measurements if x.name == m.ceiling), None)) and c.throughput
            },
            "sale": [b.as_json() for b in self.bursts],
            "verdicts": [{"acceptance": v.acceptance, "ok": v.ok, "text": v.text} for v in self.verdicts()],
            "notes": self.notes,
        }


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _statuses(statuses: Mapping[Any, int]) -> str:
    return " ".join(f"{s}:{n}" for s, n in sorted(statuses.items(), key=lambda item: str(item[0])))


def render_measurements(measurements: Sequence[Measurement]) -> str:
    by_name = {m.name: m for m in measurements}
    rows = []
    for m in measurements:
        ceiling = by_name.get(m.ceiling or "")
        ratio = f"{m.throughput / ceiling.throughput:.2f}" if ceiling and ceiling.throughput else "ceiling"
        latency_ratio = f"{m.p50_ms / ceiling.p50_ms:.1f}x" if ceiling and ceiling.p50_ms and m.p50_ms else ""
        cpu = f"{m.generator_cpu_fraction:.0%}" + (" SATURATED" if m.generator_saturated else "")
        rows.append(
            (
                m.name,
                f"{m.generator} x{m.connections}",
                f"{m.throughput:.0f}",
                _ms(m.p50_ms),
                _ms(m.p99_ms),
                str(m.errors),
                ratio,
                latency_ratio,
                cpu,
            )
        )
    header = (
        "",
        "generator x conns",
        "ok/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ok/s / ceiling",
        "p50 / ceiling",
        "gen CPU",
    )
    return table(rows, header)


def render_bursts(bursts: Sequence[sale_records.BurstResult]) -> str:
    rows = []
    for b in bursts:
        probe = b.readiness.get("payment", sale_readiness.ProbeCount())
        rows.append(
            (
                str(b.connections),
                "-" if b.cold_start_seconds is None else f"{b.cold_start_seconds:.1f}",
                f"{b.captured_per_second:.1f}",
                _statuses(b.checkout_statuses),
                _ms(b.checkout.p50_ms),
                _ms(b.checkout.p99_ms),
                _ms(b.checkout.max_ms),
                str(b.checkout.timeouts),
                f"{b.checkout.retry_after_503}/{b.checkout.bare_503}",
                f"{probe.flips}/{probe.polls}",
                f"{b.browse.throughput:.0f}" if b.browse else "-",
                "PASS" if b.invariants and all(r.ok for r in b.invariants) else ("FAIL" if b.invariants else "-"),
            )
        )
    header = (
        "burst", "cold start s", "captured/s", "checkout statuses (storefront)", "p50 ms", "p99 ms", "max ms",
        ">10 s", "503 Retry-After with/without", "payment /ready not 200", "browse/s", "invariants",
    )  # fmt: skip
    return table(rows, header)


def _mib(value: int | None) -> str:
    return f"{value / 2**20:.0f} MiB" if value is not None else "-"


def render(report: BenchReport) -> str:
    parts = [
        f"bench: {report.cores} cores, wrk and pgbench as generators, {report.connections} connections,"
        f" {report.seconds:g} s per measurement (statuses from the services' own /metrics)"
    ]
    if report.measurements:
        parts.append(render_measurements(report.measurements))
        saturated = [m.name for m in report.measurements if m.generator_saturated]
        if saturated:
            parts.append(
                "generator saturated (its threads busy >= 90 % of the run, so it, not the server, set the pace): "
                + "; ".join(saturated)
            )
    if report.bursts:
        b0 = report.bursts[0]
        parts.append(
            f"the sale: cold start, then at once N concurrent checkouts through storefront for {b0.seconds:g} s"
            f" (provider latency at its default; each request a new checkout"
            + (
                ", after a 503 the connection waits its Retry-After"
                if b0.honour_retry_after
                else ", 503s not waited on"
            )
            + f"), browsing at {b0.browse_rate:g}/s beside it; captured/s from payment's shop_payments_total,"
            " statuses from storefront's http_requests_total"
        )
        parts.append(render_bursts(report.bursts))
        for b in report.bursts:
            lines = [
                f"burst {b.connections}: captured {b.captured} during the burst, {b.captured_after} once everything"
                f" was answered; payments stored {_statuses(b.payments) or '-'}",
                f"  storefront POST /api/payments {_statuses(b.checkout_statuses) or '-'};"
                f" payment POST /payments {_statuses(b.payment_statuses) or '-'};"
                f" storefront GET /api/products {_statuses(b.browse_statuses) or '-'} (the services' own counts)",
                f"  wrk saw: checkouts {_statuses(b.checkout.statuses) or '-'}, {b.checkout.socket_errors} socket"
                f" errors, {b.checkout.timeouts} over {sale.ANSWER_BOUND_SECONDS:g} s"
                + (f"; browsing p50 {_ms(b.browse.p50_ms)} ms, p99 {_ms(b.browse.p99_ms)} ms" if b.browse else ""),
                "  /ready not 200: " + ", ".join(f"{name} {p.flips} of {p.polls}" for name, p in b.readiness.items()),
                "  resident memory, cold start / peak: "
                + ", ".join(
                    f"{name} {_mib(p.rss_first_bytes)} / {_mib(p.rss_peak_bytes)}" for name, p in b.readiness.items()
                ),
            ]
            saturated = [
                name for name, r in (("checkouts", b.checkout), ("browsing", b.browse)) if r and r.generator_saturated
            ]
            if saturated:
                lines.append("  generator saturated: " + ", ".join(saturated))
            lines += [f"  {'PASS' if r.ok else 'FAIL'} {r.name}: {r.detail}" for r in b.invariants]
            lines += [f"    {r.name}: {problem}" for r in b.invariants for problem in r.problems[1:]]
            parts.append("\n".join(lines))
    parts.extend(report.notes)
    verdicts = report.verdicts()
    if verdicts:
        parts.append("the bench's bars, from this run:\n" + "\n".join(v.line() for v in verdicts))
    return "\n\n".join(parts)
