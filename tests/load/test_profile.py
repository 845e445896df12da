"""`make profile`: the sale's burst under py-spy writes a flame graph per service of the bench's own shop; where the
machine refuses ptrace, it says so, writes nothing and still exits 0."""

import os
import re
import shutil
from pathlib import Path

import pytest

from shop_devtools.topology import SERVICES
from shop_load.bench import profile
from tests.load.conftest import run_python

SERVING_EVERY_CHECKOUT = {"storefront", "payment", "catalog"}
"""The services every checkout runs through (users issued the tokens before the burst and may sit it out)."""
NOBODY = 65534

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


@pytest.mark.process
@needs_wrk
def test_a_short_profile_writes_a_flame_graph_of_each_services_own_code(tmp_path: Path) -> None:
    out = tmp_path / "profile-out"
    result = run_python(
        ["-m", "shop_load.bench.profile", "--seconds", "3", "--burst", "32", "--out", str(out)], timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    if "ptrace refused" in result.stdout:
        assert not out.exists(), "nothing written where py-spy may not sample"
        pytest.skip(result.stdout.strip())
    print(result.stdout)
    assert re.search(r"^\d+ captured/s", result.stdout, flags=re.MULTILINE), result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s.name}.svg" for s in SERVICES)
    for service in SERVICES:
        svg = out / f"{service.name}.svg"
        graph = svg.read_text()
        assert graph.startswith("<?xml"), svg
        assert graph.rstrip().endswith("</svg>"), svg
        if f"{svg} (no sample)" in result.stdout:
            assert service.name not in SERVING_EVERY_CHECKOUT
            assert "No valid input" in graph, "py-spy's graph of a process that ran no Python code"
            continue
        assert f"{svg} ({svg.stat().st_size >> 10} KB)" in result.stdout
        assert re.search(r"<title>all \(\d+ samples?, 100%\)</title>", graph), "py-spy's flame graph, rooted at all"
        if service.name in SERVING_EVERY_CHECKOUT:  # a frame per function, titled with its module path
            assert re.search(rf"<title>[^<]*\(shop_{service.name}/[\w/]+\.py:\d+\) \(\d+ samples?", graph), service


@pytest.mark.process
@needs_wrk
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="a refusal is made by sampling as nobody")
def test_where_ptrace_is_refused_it_says_so_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """py-spy run as another user than the services' (nobody, as root) is refused as under Yama or without
    CAP_SYS_PTRACE: the command says so and exits 0 before the burst."""
    as_nobody = tmp_path / "py-spy-as-nobody"
    as_nobody.write_text(
        f'#!/bin/sh\nexec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups {profile.PY_SPY} "$@"\n'
    )
    as_nobody.chmod(0o755)
    monkeypatch.setattr(profile, "PY_SPY", str(as_nobody))
    monkeypatch.setattr("sys.argv", ["shop-profile", "--seconds", "3", "--out", str(tmp_path / "profile-out")])
    profile.main()
    said = capsys.readouterr().out
    assert said.startswith("shop-profile: ptrace refused, no profile written: Permission Denied"), said
    assert not (tmp_path / "profile-out").exists()
