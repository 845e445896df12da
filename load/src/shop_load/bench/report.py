"""The bench's verdicts and its text: the verdict on each of the bench's bars (`verdicts`: the sale, reads against
the ceiling, the invariants after each burst), and the report (`shop_load.report.bench_model.BenchReport`) as the
tables and lines the bench prints (`render`).
"""

from collections.abc import Mapping, Sequence

from shop_load.bench.sale import ANSWER_BOUND_SECONDS
from shop_load.report.bench_model import Bar, BenchReport, Burst, Measurement, Verdict
from shop_load.report.text import table

CAPTURED_PER_SECOND = 150.0
"""What the first burst of the sale captures per second at least."""
READ_RATIOS: tuple[tuple[str, Bar, float], ...] = (
    ("(catalog)", "catalog-read-ratio", 0.5),
    ("(storefront)", "storefront-read-ratio", 0.33),
)
"""The share of the bare ceiling catalog's and storefront's product list are served at, at least."""


def verdicts(report: BenchReport) -> list[Verdict]:
    """One verdict per bar, in the order they are printed: reads, then each burst, then each burst's invariants."""
    found: list[Verdict] = []

    def bar(name: Bar, ok: bool, text: str, burst: Burst | None = None) -> None:
        where = f"burst {burst.connections}: " if burst else ""
        found.append(Verdict(bar=name, burst=burst.connections if burst else None, ok=ok, text=where + text))

    for service, name, share in READ_RATIOS:
        m = next((m for m in report.measurements if m.name.startswith("GET") and m.name.endswith(service)), None)
        if m is not None and m.ratio is not None:
            saturated = " (a generator was saturated: the ratio is not the server's)" if m.generator_saturated else ""
            bar(name, m.ratio >= share, f"{m.name} at {m.ratio:.2f}x the bare ceiling (bar {share}x){saturated}")
    for b in report.bursts:
        first, checkout = report.bursts[0], b.checkout
        bad = {s: n for s, n in b.checkout_statuses.items() if s >= 500 and s != 503}
        bar("sale-no-5xx-but-503", not bad, f"no 5xx other than 503 (storefront counted {_statuses(bad) or 'none'})", b)
        if b is first:
            late, longest = checkout.timeouts, _ms(checkout.max_ms)
            in_time = late == 0 and (checkout.max_ms or 0) <= ANSWER_BOUND_SECONDS * 1000
            text = f"no answer over {ANSWER_BOUND_SECONDS:.0f} s ({late} later, the others within {longest} ms)"
            bar("sale-answer-bound", in_time, text, b)
            text = f"at least {CAPTURED_PER_SECOND:.0f} captured/s ({b.captured_per_second:.1f})"
            bar("sale-captured-rate", b.captured_per_second >= CAPTURED_PER_SECOND, text, b)
        else:
            text = f"every 503 carries Retry-After ({checkout.retry_after_503} with, {checkout.bare_503} without)"
            bar("sale-retry-after", checkout.bare_503 == 0, text, b)
            rate, then = b.captured_per_second, first.captured_per_second
            text = f"captured/s not lower than at {first.connections} ({rate:.1f} vs {then:.1f})"
            bar("sale-captured-not-lower", rate >= then, text, b)
        probe = b.readiness["payment"]
        first_failure = f"; first {probe.first_failure}" if probe.first_failure else ""
        text = f"payment /ready 200 throughout ({probe.flips} of {probe.polls} polls not 200{first_failure})"
        bar("sale-payment-ready", probe.flips == 0 and probe.polls > 0, text, b)
    for b in report.bursts:
        failed = [r.name for r in b.invariants if not r.ok]
        text = ("failed: " + ", ".join(failed)) if failed else f"hold ({len(b.invariants)} checked)"
        text = f"invariants {text if b.invariants else 'not checked'}"
        bar("sale-invariants", bool(b.invariants) and not failed, text, b)
    return found


def line(verdict: Verdict) -> str:
    return f"{'PASS' if verdict.ok else 'FAIL'}  {verdict.text}"


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _mib(value: int | None) -> str:
    return f"{value / 2**20:.0f} MiB" if value is not None else "-"


def _statuses(statuses: Mapping[int, int] | Mapping[str, int]) -> str:
    return " ".join(f"{s}:{n}" for s, n in sorted(statuses.items(), key=lambda item: str(item[0])))


def _table(rows: Sequence[Mapping[str, str]]) -> str:
    """Rows of (column header: cell), every row with the same columns."""
    return table([list(row.values()) for row in rows], list(rows[0]))


def render_measurements(measurements: Sequence[Measurement]) -> str:
    by_name = {m.name: m for m in measurements}

    def row(m: Measurement) -> dict[str, str]:
        ceiling = by_name.get(m.ceiling or "")
        return {
            "": m.name,
            "generator x conns": f"{m.generator} x{m.connections}",
            "ok/s": f"{m.throughput:.0f}",
            "p50 ms": _ms(m.p50_ms),
            "p99 ms": _ms(m.p99_ms),
            "errors": str(m.errors),
            "ok/s / ceiling": "ceiling" if m.ratio is None else f"{m.ratio:.2f}",
            "p50 / ceiling": f"{m.p50_ms / ceiling.p50_ms:.1f}x" if ceiling and ceiling.p50_ms and m.p50_ms else "",
            "gen CPU": f"{m.generator_cpu_fraction:.0%}" + (" SATURATED" if m.generator_saturated else ""),
        }

    return _table([row(m) for m in measurements])


def render_bursts(bursts: Sequence[Burst]) -> str:
    def row(b: Burst) -> dict[str, str]:
        probe, checks = b.readiness["payment"], b.invariants
        return {
            "burst": str(b.connections),
            "cold start s": "-" if b.cold_start_s is None else f"{b.cold_start_s:.1f}",
            "captured/s": f"{b.captured_per_second:.1f}",
            "CPU ms/captured": _ms(b.cpu_ms_per_captured["total"] if b.cpu_ms_per_captured else None),
            "checkout statuses (storefront)": _statuses(b.checkout_statuses),
            "p50 ms": _ms(b.checkout.p50_ms),
            "p99 ms": _ms(b.checkout.p99_ms),
            "max ms": _ms(b.checkout.max_ms),
            ">10 s": str(b.checkout.timeouts),
            "503 Retry-After with/without": f"{b.checkout.retry_after_503}/{b.checkout.bare_503}",
            "payment /ready not 200": f"{probe.flips}/{probe.polls}",
            "browse/s": f"{b.browse.throughput:.0f}" if b.browse else "-",
            "invariants": ("PASS" if all(r.ok for r in checks) else "FAIL") if checks else "-",
        }

    return _table([row(b) for b in bursts])


def render_burst(b: Burst) -> str:
    """What one burst counted, in full: the services' own counts, what wrk saw, readiness, memory, invariants."""
    lines = [
        f"burst {b.connections}: captured {b.captured} during the burst, {b.captured_after} once everything"
        f" was answered; payments stored {_statuses(b.payments) or '-'}",
        f"  storefront POST /api/payments {_statuses(b.checkout_statuses) or '-'};"
        f" payment POST /payments {_statuses(b.payment_statuses) or '-'};"
        f" storefront GET /api/products {_statuses(b.browse_statuses) or '-'} (the services' own counts)",
        f"  wrk saw: checkouts {_statuses(b.checkout.statuses) or '-'}, {b.checkout.socket_errors} socket"
        f" errors, {b.checkout.timeouts} over {ANSWER_BOUND_SECONDS:g} s"
        + (f"; browsing p50 {_ms(b.browse.p50_ms)} ms, p99 {_ms(b.browse.p99_ms)} ms" if b.browse else ""),
        "  /ready not 200: " + ", ".join(f"{name} {p.flips} of {p.polls}" for name, p in b.readiness.items()),
        "  resident memory, cold start / peak: "
        + ", ".join(f"{name} {_mib(p.rss_first_bytes)} / {_mib(p.rss_peak_bytes)}" for name, p in b.readiness.items()),
    ]
    if cpu := b.cpu_ms_per_captured:
        idle = f"less {_ms(sum(b.cpu_idle_ms_per_second.values()))} ms/s idle"
        lines.append(f"  CPU ms per captured checkout ({idle}): " + ", ".join(f"{n} {_ms(v)}" for n, v in cpu.items()))
    if saturated := [m.name for m in (b.checkout, b.browse) if m and m.generator_saturated]:
        lines.append("  generator saturated: " + ", ".join(saturated))
    lines += [f"  {'PASS' if r.ok else 'FAIL'} {r.name}: {r.detail}" for r in b.invariants]
    lines += [f"    {r.name}: {problem}" for r in b.invariants for problem in r.problems[1:]]
    return "\n".join(lines)


def render(report: BenchReport) -> str:
    parts = [
        f"bench: {report.cores} cores, wrk and pgbench as generators, {report.connections} connections,"
        f" {report.seconds:g} s per measurement (statuses from the services' own /metrics)"
    ]
    if report.measurements:
        parts.append(render_measurements(report.measurements))
        if saturated := [m.name for m in report.measurements if m.generator_saturated]:
            why = "its threads busy >= 90 % of the run, so it, not the server, set the pace"
            parts.append(f"generator saturated ({why}): " + "; ".join(saturated))
    if report.bursts:
        first = report.bursts[0]
        waits = "after a 503 the connection waits its Retry-After" if first.honour_retry_after else "503s not waited on"
        parts.append(
            f"the sale: cold start, then at once N concurrent checkouts through storefront for {first.seconds:g} s"
            f" (provider latency at its default; each request a new checkout, {waits}), browsing at"
            f" {first.browse_rate:g}/s beside it; captured/s from payment's shop_payments_total, statuses from"
            " storefront's http_requests_total"
        )
        parts += [render_bursts(report.bursts), *(render_burst(b) for b in report.bursts)]
    parts += report.notes
    if report.verdicts:
        parts.append("the bench's bars, from this run:\n" + "\n".join(line(v) for v in report.verdicts))
    return "\n\n".join(parts)
