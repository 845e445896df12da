"""`make profile` / `python -m shop_load.bench.profile`: where the shop's time goes during the sale, as flame graphs.

The bench's own shop (`shop_load.bench.shop`, the provider at its default latency) plays the sale's burst
(`shop_load.bench.sale`: `--burst` concurrent checkouts through the storefront beside paced browsing, as `make bench`
plays it, but warm: no cold start, and no invariants) while py-spy samples every service process for `--seconds`
from the burst's start: 100 times a second, their children too, without pausing them, only threads running Python
(idle ones are left out, so a graph shows where CPU goes), by function. One flame graph per process goes to `--out`,
named after it (`payment.svg`; with PAYMENT_REPLICAS `payment-1.svg`, ...); a process that ran no Python code while
sampled gets py-spy's graph of nothing, listed as "no sample". The sampling costs CPU of its own, so the shop is
slower than under `make bench`: read the graphs as shares of each service's time, not as the bench's figures.

py-spy reads a service's memory with a debugger's permission (ptrace). Where this machine refuses it (Yama's
ptrace_scope, a container without CAP_SYS_PTRACE, another user's process), the command says so and exits 0 having
written nothing: a profile is advice, and a machine that cannot give it is no failure. Exit 1: it could not run.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from shop_load.bench import sale
from shop_load.bench.shop import CUSTOMERS, BenchError, own_shop, prepare
from shop_load.generators.wrk_report import WrkError

PY_SPY = str(Path(sys.executable).with_name("py-spy"))  # the wheel's binary, beside this environment's Python
RECORD = ["record", "--format", "flamegraph", "--rate", "100", "--function", "--subprocesses", "--nonblocking"]


def profile(seconds: int, burst: int, out: Path, workdir: Path) -> str:
    """The sale's burst with py-spy sampling each service; what to print at the end."""
    with own_shop(workdir) as own:
        own.start(provider_latency_ms=None)
        probe = subprocess.run([PY_SPY, "dump", "--pid", str(own.children[0].process.pid)], capture_output=True)
        if probe.returncode and any(word in probe.stderr.lower() for word in (b"permission", b"not permitted")):
            return f"shop-profile: ptrace refused, no profile written: {probe.stderr.decode().strip()}"
        customers, bodies = prepare(own.shop.storefront, min(CUSTOMERS, burst))
        own.shop.operator = own.shop.parts = None  # no invariants, no CPU accounting: make bench does both
        out.mkdir(parents=True, exist_ok=True)
        record, svgs = [PY_SPY, *RECORD, "--duration", str(seconds)], {out / f"{c.name}.svg": c for c in own.children}
        spies = {svg: subprocess.Popen([*record, "--pid", str(c.process.pid), "-o", svg]) for svg, c in svgs.items()}
        result = sale.burst(own.shop, customers, bodies, workdir, connections=burst, seconds=seconds,
                            browse_connections=16, browse_rate=300.0, cold_start=None)  # fmt: skip
        for spy in spies.values():
            spy.wait()  # each writes its graph when its --duration is over
    return "\n".join([f"{result.captured_per_second:.0f} captured/s, graphs:", *(f"  {g} ({_size(g)})" for g in spies)])


def _size(svg: Path) -> str:
    """py-spy's graph of a process that ran no Python code while sampled is only an error message."""
    return "no sample" if b"No valid input" in svg.read_bytes() else f"{svg.stat().st_size >> 10} KB"


def main() -> None:
    parser = argparse.ArgumentParser(prog="shop-profile", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10, help="length of the burst, sampled throughout (10)")
    parser.add_argument("--burst", type=int, default=128, help="concurrent checkouts (128)")
    parser.add_argument("--out", type=Path, default=Path("profile-out"), help="where the graphs go (profile-out)")
    with tempfile.TemporaryDirectory(prefix="shop-profile-") as tmp:
        Path(tmp).chmod(0o755)  # the embedded PostgreSQL may run as another user
        try:
            print(profile(**vars(parser.parse_args()), workdir=Path(tmp)))
        except (BenchError, WrkError, OSError) as exc:  # OSError: a graph py-spy did not write
            raise SystemExit(f"shop-profile: {exc}") from None


if __name__ == "__main__":
    main()
