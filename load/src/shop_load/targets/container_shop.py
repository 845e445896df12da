"""The shop in containers on a running engine, run the way the kind overlay runs its pods (`up`, `down`: `python -m
shop_load.containers`), and where the drill's container target finds it (`ContainerShop`, in
`<data dir>/containers/`: `shop.json` and the operator's `credentials.env`, as make run keeps its own).

`up` builds the four images with the project's Dockerfile (`shop_devtools.images`) and PostgreSQL's
(`load/postgres/Dockerfile`: Debian's PostgreSQL on the same base, since no registry may be reachable) on the engine's
Python base (`Engine.base_image`). Every container gets what its pod gets in the rendered manifests (`pod_specs`): its
user, memory limit (no swap), a read-only root with the pod's emptyDirs as tmpfs, no capabilities, its plain
settings, and `--restart always`, so that the engine starts again what dies, as the kubelet would. PostgreSQL keeps
its data (PGDATA) on a named volume, its port published on 127.0.0.1 only; databases, roles and migrations come from
`shop_devtools.provision`. The services listen on the host's loopback, two payment containers behind storefront.
No container has a health check: the engine's runs a process in the container (`python -c ...`: a fifth of a core
for the idle shop, probed every 2 s) where the kubelet sends an HTTP GET, and acts on nothing but an exit; the drill
asks the probes itself. The shop's credentials, the chaos token and
the database's password are new for every run; a secret is named on the command line (`--env NAME`) and its value
given through the docker client's environment, so it is in no command line.
"""

import contextlib
import functools
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from pydantic import BaseModel

from shop_devtools import images
from shop_devtools.credentials import NAMES, env_text, new_credentials
from shop_devtools.engine import Engine, pod_constraints
from shop_devtools.processes import free_port, wiring
from shop_devtools.provision import provision
from shop_devtools.quantities import memory_bytes
from shop_devtools.runconfig import default_data_dir
from shop_devtools.topology import BY_NAME
from shop_devtools.workspace import private_key_pem, project_version, repository_root, write_private
from shop_load.core.drill_args import DrillError

PREFIX = "rs-e2e"
DATABASE = "postgres"
VOLUME = f"{PREFIX}-pgdata"
# Each service container (callees first, the order they start in) → its service.
SERVICE_OF = {name: name.split("-")[0] for name in ("catalog", "users", "payment-a", "payment-b", "storefront")}
OVERLAY = "k8s/overlays/kind"
POSTGRES_CONTEXT = Path("load/postgres")
# Given to a container by name only; their values go through the docker client's environment (`secret_env`).
SECRETS = frozenset({"DATABASE_URL", "CHAOS_TOKEN", "USERS_JWT_PRIVATE_KEY", "POSTGRES_PASSWORD", *NAMES})
ROUTING = frozenset({"HOST", "PORT", "CHAOS_ENABLED"})
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
STATE_FILE = "shop.json"


def container(name: str) -> str:
    return f"{PREFIX}-{name}"


def say(text: str) -> None:
    print(f"e2e    | {text}", flush=True)


@dataclass(frozen=True)
class PodSpec:
    """What a pod's container is run with, as far as a container engine can apply it: `env`, its plain settings (its
    ConfigMaps' and literal values: no secret, no routing, no URL); `tmpfs`, the pod's emptyDir mounts (path → size
    limit in bytes); `data_mount`, where a StatefulSet's claim is mounted (the named volume goes there)."""

    memory_limit_bytes: int
    run_as_user: int
    env: dict[str, str]
    tmpfs: dict[str, int | None]
    data_mount: str | None = None


def pod_specs(documents: Sequence[Mapping[str, Any]]) -> dict[str, PodSpec]:
    """Each service's container (its Deployment) and PostgreSQL's (the StatefulSet) from rendered manifests."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in documents if d.get("kind") == "ConfigMap"}
    specs = {}
    for workload in (d for d in documents if d.get("kind") in {"Deployment", "StatefulSet"}):
        name = workload["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        if name not in {*BY_NAME, DATABASE}:
            continue
        pod = workload["spec"]["template"]["spec"]
        spec = next(c for c in pod["containers"] if c["name"] == name)
        refs = [ref["configMapRef"]["name"] for ref in spec.get("envFrom", []) if "configMapRef" in ref]
        env = {key: value for ref in refs for key, value in config_maps[ref].items()}
        env |= {e["name"]: str(e["value"]) for e in spec.get("env", []) if "value" in e}
        empty_dirs = {v["name"]: v["emptyDir"] for v in pod.get("volumes", []) if "emptyDir" in v}
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        mounts = spec.get("volumeMounts", [])
        specs[name] = PodSpec(
            memory_limit_bytes=memory_bytes(spec["resources"]["limits"]["memory"]),
            run_as_user=int(spec.get("securityContext", {}).get("runAsUser") or pod["securityContext"]["runAsUser"]),
            env={k: v for k, v in env.items() if k not in SECRETS | ROUTING and not k.endswith("_URL")},
            tmpfs={
                m["mountPath"]: memory_bytes(str(size)) if (size := empty_dirs[m["name"]].get("sizeLimit")) else None
                for m in mounts
                if m["name"] in empty_dirs
            },
            data_mount=next((m["mountPath"] for m in mounts if m["name"] in claims), None),
        )
    if missing := {*BY_NAME, DATABASE} - specs.keys():
        raise ValueError(f"the rendered manifests run no pod for {sorted(missing)}")
    return specs


def render_manifests(root: Path) -> list[dict[str, Any]]:
    run = [sys.executable, "-m", "shop_devtools.cluster", "secrets"]  # the overlay reads the generated Secrets
    subprocess.run(run, cwd=root, check=True, capture_output=True)
    rendered = subprocess.run(["kubectl", "kustomize", str(root / OVERLAY)], check=True, capture_output=True, text=True)
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def run_argv(name: str, image: str, spec: PodSpec, env: Mapping[str, str], *flags: str) -> list[str]:
    """`docker run` of one container as its pod is run; a secret of `env` is named without its value."""
    argv = ["run", "--detach", "--name", container(name), *pod_constraints(spec.run_as_user, spec.memory_limit_bytes)]
    for path, size in spec.tmpfs.items():
        argv += ["--tmpfs", f"{path}:rw" + (f",size={size}" if size else "")]
    if spec.data_mount is not None:
        argv += ["--volume", f"{VOLUME}:{spec.data_mount}"]
    for key, value in {**spec.env, **env}.items():
        argv += ["--env", key if key in SECRETS else f"{key}={value}"]
    return [*argv, *flags, image]


def secret_env(env: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key in SECRETS}


def database_build_argv(image: str, base_image: str, context: Path, ca_bundle: Path | None) -> list[str]:
    """`docker build` of PostgreSQL's image (BuildKit), as `shop_devtools.images` builds the services'."""
    ca = ["--secret", f"id=ca,src={ca_bundle}"] if ca_bundle else []
    return ["build", "--tag", image, "--build-arg", f"BASE_IMAGE={base_image}", *ca, "--network", "host", str(context)]


class ContainerShop(BaseModel):
    """What `up` started, as the drill finds it: the docker `client` that reaches the engine, each container's port
    and user (uid, as its pod runs it), and how the database container is run (`database_argv`: run again on the same
    volume, it shows what the volume keeps)."""

    client: str
    ports: dict[str, int]
    chaos_token: str
    users: dict[str, int]
    database_urls: dict[str, str]
    database_password: str
    database_argv: list[str]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @classmethod
    def load(cls, folder: Path) -> "ContainerShop":
        if not (folder / STATE_FILE).exists():
            raise DrillError(f"no shop in containers in {folder}: start one with python -m shop_load.containers up")
        return cls.model_validate_json((folder / STATE_FILE).read_text())


def shop_dir(data_dir: Path | None) -> Path:
    """`--data-dir`, else `containers` in make run's data directory."""
    return data_dir or default_data_dir(os.environ) / "containers"


def wait(answers: Callable[[], object], what: str, name: str, timeout: float = 90) -> None:
    """Until `answers()` returns something true without raising (the container's log is kept by `down`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(httpx.HTTPError, psycopg.Error):
            if answers():
                return say(f"{name} {what} after {time.monotonic() - started:.1f} s")
        time.sleep(0.2)
    raise RuntimeError(f"{name} not {what} after {timeout:.0f} s (its log: `docker logs {container(name)}`)")


def accepting(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=2):
        return True


def ready(url: str) -> bool:
    return httpx.get(url + "/ready", timeout=2).is_success


def build(engine: Engine, base_image: str, root: Path, version: str) -> None:
    env = {**os.environ, "BASE_IMAGE": base_image, "DOCKER_BUILD_NETWORK": "host"}
    env["PATH"] = f"{Path(engine.client).parent}:{os.environ.get('PATH', '')}"
    ca_bundle = CA_BUNDLE if CA_BUNDLE.exists() else None
    if ca_bundle:
        env["CA_BUNDLE"] = str(ca_bundle)
    say(f"building the images on {base_image}")
    images.build(images.SERVICES, root=root, environ=env)
    argv = database_build_argv(images.image_name(DATABASE, version), base_image, root / POSTGRES_CONTEXT, ca_bundle)
    if (built := engine.docker(*argv, env={"DOCKER_BUILDKIT": "1"}, timeout=900, check=False)).returncode != 0:
        raise RuntimeError(f"building {argv[2]} failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")


def start(engine: Engine, specs: Mapping[str, PodSpec], version: str) -> tuple[ContainerShop, dict[str, str]]:
    """PostgreSQL on a new volume, provisioned, then the services, each awaited until ready."""
    password, port = secrets.token_urlsafe(18), free_port()
    env, image = {"POSTGRES_PASSWORD": password}, images.image_name(DATABASE, version)
    database_argv = run_argv(DATABASE, image, specs[DATABASE], env, "--publish", f"127.0.0.1:{port}:5432")
    engine.docker("volume", "create", VOLUME)
    engine.docker(*database_argv, env=env)
    admin_url = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    wait(lambda: accepting(admin_url), "accepting connections", DATABASE)
    shop = ContainerShop(
        client=engine.client,
        ports={name: free_port() for name in SERVICE_OF},
        chaos_token=secrets.token_urlsafe(24),
        users={name: specs[service].run_as_user for name, service in {**SERVICE_OF, DATABASE: DATABASE}.items()},
        database_urls=provision(admin_url),
        database_password=password,
        database_argv=database_argv,
    )
    credentials, payments = new_credentials(), f"{shop.url('payment-a')},{shop.url('payment-b')}"
    upstreams = {"catalog": shop.url("catalog"), "users": shop.url("users"), "payment": payments}
    for name, service in SERVICE_OF.items():
        env = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": shop.chaos_token, "HOST": "127.0.0.1"}
        env |= {"PORT": str(shop.ports[name])} | wiring(BY_NAME[service], shop.database_urls, upstreams, credentials)
        if service == "users":
            env["USERS_JWT_PRIVATE_KEY"] = private_key_pem()
        image = images.image_name(service, version)
        engine.docker(*run_argv(name, image, specs[service], env, "--network", "host"), env=secret_env(env))
    for name in SERVICE_OF:
        url = shop.url(name)
        wait(functools.partial(ready, url), f"ready at {url}", name)
    return shop, credentials


def up(engine: Engine, folder: Path) -> None:
    """Builds the images and starts the shop in containers; on failure removes what it started."""
    root = repository_root()
    version, specs = project_version(root), pod_specs(render_manifests(root))
    build(engine, engine.base_image(), root, version)
    down(engine, folder)  # an interrupted run's
    try:
        shop, credentials = start(engine, specs, version)
    except BaseException:
        down(engine, folder)
        raise
    folder.mkdir(parents=True, exist_ok=True)
    write_private(folder / "credentials.env", env_text(credentials), replace=True)
    write_private(folder / STATE_FILE, shop.model_dump_json(indent=1), replace=True)
    say(f"the shop runs in containers at {shop.url('storefront')}; the drill finds it in {folder}")


def down(engine: Engine, folder: Path) -> None:
    """Removes every container of the shop and the database's volume, keeping their logs in `<folder>/logs`."""
    (folder / STATE_FILE).unlink(missing_ok=True)
    listed = engine.docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"name={PREFIX}-", check=False)
    names = listed.stdout.split()
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    for name in names:
        logs = engine.docker("logs", name, check=False)
        (folder / "logs" / f"{name}.log").write_text(logs.stdout + logs.stderr)
    if names:
        engine.docker("rm", "--force", *names, check=False)
    engine.docker("volume", "rm", "--force", VOLUME, check=False)
