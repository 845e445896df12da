"""Where no container engine can be had, the container proof says why and skips, instead of failing CI."""

from pathlib import Path

import pytest

from shop_devtools import engine
from shop_load import containers


def test_no_engine_and_no_way_to_install_one_is_a_clear_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(engine, "DEBIAN_DOCKER_CLIENT", tmp_path / "no-docker")
    monkeypatch.setattr(engine.shutil, "which", lambda name, *args, **kwargs: None)
    monkeypatch.setattr(engine.os, "geteuid", lambda: 1000)

    with pytest.raises(engine.EngineUnavailable, match=r"docker\.io missing and cannot be installed"):
        engine.Engine.ensure(tmp_path)

    assert containers.main(["--out", str(tmp_path)]) == 0
    assert "SKIPPED: no container engine can run on this machine" in capsys.readouterr().out
