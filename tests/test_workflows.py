"""The GitHub Actions workflows: every action pinned to a commit (its release named beside it), a token that can only
read, and the end-to-end workflow held to the cluster guide (docs/kubernetes.md): each make command line it runs is a
target of the Makefile and stands in the guide's code blocks, both clusters run the up target and then the drill, and
the drill's report is kept whatever happened. actionlint and zizmor (`make lint`) check the rest."""

import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
E2E = ROOT / ".github" / "workflows" / "e2e.yml"
GUIDE = ROOT / "docs" / "kubernetes.md"
CLUSTERS = ("kind", "minikube")

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(.*?)\s*$")
PINNED = re.compile(r"[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40} # v\d+(?:\.\d+)*")
"""`owner/repo[/path]@<the commit's 40 hex digits> # v1.2.3`: the commit runs, the comment says which release it is."""
COMMAND_SEPARATOR = re.compile(r"&&|\|\||;|\|")
FENCE = re.compile(r"^ {0,3}(```|~~~)[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
TRAILING_COMMENT = re.compile(r"\s+#.*$")
READ_ONLY = {"read", "none"}


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    assert isinstance(workflow, dict), path
    return workflow


def jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = workflow.get("jobs")
    assert isinstance(found, dict)
    assert found, "a workflow without jobs"
    return found


def steps(workflow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in jobs(workflow).values():
        yield from job.get("steps", [])


def make_lines(script: str) -> list[str]:
    """The make command lines of a `run:` script: every command (between `&&`, `||`, `;` and `|`) that is make."""
    found = []
    for line in script.splitlines():
        if line.strip().startswith("#"):
            continue
        for command in COMMAND_SEPARATOR.split(TRAILING_COMMENT.sub("", line)):
            if command.split()[:1] == ["make"]:
                found.append(" ".join(command.split()))
    return found


def run_make_lines(job: dict[str, Any], *, on_failure_too: bool = True) -> list[str]:
    return [
        line
        for step in job.get("steps", [])
        if "run" in step and (on_failure_too or "if" not in step)
        for line in make_lines(step["run"])
    ]


def guide_lines() -> set[str]:
    """Every line of the guide's fenced code blocks as a reader would type it: no `$ ` prompt, no trailing comment."""
    lines = set()
    for _, body in FENCE.findall(GUIDE.read_text()):
        for line in body.splitlines():
            line = TRAILING_COMMENT.sub("", line.strip().removeprefix("$ ")).strip()
            if line:
                lines.add(" ".join(line.split()))
    return lines


def dry_run(command_line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`make -n` of a make command line, from a folder without the developer's .data/cluster.mk: make refuses a
    target no rule makes. UV is `true`, so nothing installs (a dry run runs `$(shell ...)` only)."""
    arguments = shlex.split(command_line)[1:]
    command = ["make", "-n", "-f", str(ROOT / "Makefile"), f"UV={shutil.which('true')}", *arguments]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def test_there_are_workflows_and_the_e2e_one_is_among_them() -> None:
    assert E2E in WORKFLOWS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_commit_with_its_release_named(path: Path) -> None:
    text = path.read_text()
    written = [match.group(1) for line in text.splitlines() if (match := USES_LINE.match(line))]
    assert [uses for uses in written if not PINNED.fullmatch(uses)] == []
    parsed = [step["uses"] for step in steps(load(path)) if "uses" in step]
    parsed += [job["uses"] for job in jobs(load(path)).values() if "uses" in job]  # reusable workflows
    assert len(written) == len(parsed), "a uses: the line check did not see (flow style?)"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_the_token_can_only_read(path: Path) -> None:
    workflow = load(path)
    assert "permissions" in workflow, "without it the token gets the repository's default, which may write"
    for where, permissions in [("workflow", workflow["permissions"])] + [
        (name, job["permissions"]) for name, job in jobs(workflow).items() if "permissions" in job
    ]:
        assert permissions in ({}, "read-all") or (
            isinstance(permissions, dict) and set(permissions.values()) <= READ_ONLY
        ), f"{where}: {permissions}"


def test_both_clusters_run_the_up_target_then_the_drill() -> None:
    e2e = jobs(load(E2E))
    assert set(CLUSTERS) <= set(e2e)
    for cluster in CLUSTERS:
        assert run_make_lines(e2e[cluster], on_failure_too=False) == [f"make {cluster}-up", "make drill"]
        assert isinstance(e2e[cluster].get("timeout-minutes"), int), cluster


def test_each_job_keeps_the_drills_report_whatever_happened() -> None:
    for name, job in jobs(load(E2E)).items():
        uploads = [
            step
            for step in job["steps"]
            if str(step.get("uses", "")).startswith("actions/upload-artifact@")
            and "drill-out" in str(step.get("with", {}).get("path", ""))
        ]
        assert uploads, f"{name} does not upload drill-out"
        assert all("always()" in str(step.get("if", "")) for step in uploads), name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_make_command_line_names_a_target_of_the_makefile(path: Path, tmp_path: Path) -> None:
    lines = [line for job in jobs(load(path)).values() for line in run_make_lines(job)]
    refused = {line: result.stderr.strip() for line in lines if (result := dry_run(line, tmp_path)).returncode != 0}
    assert refused == {}


def test_the_target_check_refuses_a_target_the_makefile_lacks(tmp_path: Path) -> None:
    result = dry_run("make kind-upp", tmp_path)
    assert result.returncode != 0
    assert "kind-upp" in result.stderr


def test_the_e2e_workflows_make_command_lines_are_the_cluster_guides() -> None:
    lines = {line for job in jobs(load(E2E)).values() for line in run_make_lines(job)}
    assert lines, "the e2e workflow runs no make command"
    assert sorted(lines - guide_lines()) == []


def test_make_lines_finds_make_in_a_compound_command_and_skips_comments() -> None:
    script = "# make nothing\nmake status || true\nkubectl get pods | make  drill FAULT=crash # then\necho make\n"
    assert make_lines(script) == ["make status", "make drill FAULT=crash"]
