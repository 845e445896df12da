"""The Makefile: every recipe line passes shellcheck, and every target `make help` lists is documented."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = (ROOT / "Makefile").read_text()


def recipe_lines() -> list[str]:
    return [line[1:] for line in MAKEFILE.splitlines() if line.startswith("\t")]


def as_shell(line: str) -> str:
    """A recipe line as the shell sees it, make's own syntax replaced by plain words."""
    line = re.sub(r"\$\(if [^,]+,([^)]*)\)", r"\1", line)  # $(if $(X),--flag) → --flag
    line = re.sub(r"\$\([A-Za-z_]+\)", "value", line)  # $(UV) → value
    return line.replace("$$", "$")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck comes with the dev dependencies")
def test_every_recipe_line_passes_shellcheck() -> None:
    script = "#!/usr/bin/env bash\n" + "\n".join(as_shell(line) for line in recipe_lines()) + "\n"
    result = subprocess.run(["shellcheck", "-s", "bash", "-"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_documented_commands_exist_in_make_help() -> None:
    documented = set(re.findall(r"^([a-zA-Z0-9_-]+):.*## ", MAKEFILE, flags=re.MULTILINE))
    for target in ["run", "test", "kind-up", "minikube-up", "leak", "drill", "load", "compose-up", "down", "images"]:
        assert target in documented
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert all(target in listed for target in documented)


def dry_run(target: str, cwd: Path, *variables: str) -> str:
    """What `make -n target` would run from `cwd` (the Makefile read from the checkout)."""
    command = ["make", "-n", "-f", str(ROOT / "Makefile"), target, f"UV={shutil.which('true')}", *variables]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_the_cluster_an_up_target_made_is_what_the_other_targets_aim_at(tmp_path: Path) -> None:
    assert "--cluster kind" in dry_run("leak", tmp_path)
    drill = dry_run("drill", tmp_path)
    assert "--url http://localhost:8080 " in drill
    assert "--context" not in drill

    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "cluster.mk").write_text(
        "CLUSTER = minikube\nSHOP_URL = http://192.168.49.2:30080\nKUBE_CONTEXT = resilient-shop\n"
    )
    assert "leak --cluster minikube" in dry_run("leak", tmp_path)
    assert "status --cluster minikube" in dry_run("status", tmp_path)
    assert "--host http://192.168.49.2:30080" in dry_run("load", tmp_path)
    assert "--url http://192.168.49.2:30080 --context resilient-shop " in " ".join(dry_run("drill", tmp_path).split())
    assert "--url http://localhost:9999 " in dry_run("drill", tmp_path, "SHOP_URL=http://localhost:9999")


def test_autoscaling_reaches_the_cluster_commands(tmp_path: Path) -> None:
    for target in ("kind-up", "minikube-up", "deploy"):
        assert "--autoscaling" in dry_run(target, tmp_path, "AUTOSCALING=1").split(), target
        assert "--autoscaling" not in dry_run(target, tmp_path).split(), target
    assert "kind-up --profile resilient --autoscaling" in " ".join(
        dry_run("kind-up", tmp_path, "AUTOSCALING=1").split()
    )


def test_the_drill_takes_its_fault_from_fault(tmp_path: Path) -> None:
    assert "--fault rollout" in " ".join(dry_run("drill", tmp_path, "FAULT=rollout").split())
    assert "--fault" not in dry_run("drill", tmp_path)  # the drill's own default: the leak


def test_clean_keeps_the_cluster_choice_and_image_pins_so_deploy_reaches_the_same_cluster(tmp_path: Path) -> None:
    """`make clean` removes the embedded database and the rest of .data/, but not which cluster the up target made
    nor the images loaded there: a minikube user's `make deploy` after it still goes to minikube, pinned."""
    data = tmp_path / ".data"
    (data / "deploy" / "minikube").mkdir(parents=True)
    (data / "postgres").mkdir()
    (data / "postgres" / "PG_VERSION").write_text("16\n")
    (data / "deploy" / "minikube" / "kustomization.yaml").write_text("resources: []\n")
    (data / "deploy" / "images.json").write_text('["resilient-shop/payment:0.1.0-3f9c0e3f9c0e"]\n')
    (data / "cluster.mk").write_text("CLUSTER = minikube\nSHOP_URL = http://192.168.49.2:30080\n")
    subprocess.run(["make", "-f", str(ROOT / "Makefile"), "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert sorted(str(path.relative_to(data)) for path in data.rglob("*")) == [
        "cluster.mk",
        "deploy",
        "deploy/images.json",
    ]
    assert "deploy --cluster minikube" in dry_run("deploy", tmp_path)
    (tmp_path / "fresh").mkdir()
    subprocess.run(["make", "-f", str(ROOT / "Makefile"), "clean"], cwd=tmp_path / "fresh", check=True)  # no .data
