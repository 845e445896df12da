"""The container proof's services: what the rendered manifests run each with (`ContainerSpec`), the `docker run`
that applies it as the kubelet would, the images built with the project's Dockerfile, and the `Shop` of one run
(its containers started with credentials of their own, awaited, checked for hardening and removed; its operator at
the storefront's `/ops/`).
"""

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from shop_devtools.credentials import NAMES, OPERATOR
from shop_devtools.engine import Engine, pod_constraints
from shop_devtools.images import image_name
from shop_devtools.pg import free_port
from shop_devtools.processes import POLL_SECONDS, readiness, wiring
from shop_devtools.quantities import memory_bytes
from shop_devtools.topology import BY_NAME, CALLEES_FIRST
from shop_devtools.workspace import private_key_pem
from shop_load.containers.db import DatabaseContainer
from shop_load.core.ops import Operator

SERVICES = tuple(service.name for service in CALLEES_FIRST)
OVERLAY = "k8s/overlays/kind"
SECRETS = frozenset({"DATABASE_URL", "CHAOS_TOKEN", "USERS_JWT_PRIVATE_KEY", *NAMES})
"""Given to a container by name only (`--env NAME`), their values through the docker client's own environment."""
SECRET_OR_ROUTING = SECRETS | {"HOST", "PORT", "CHAOS_ENABLED"}
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PREFIX = "rs-e2e"


@dataclass(frozen=True)
class ContainerSpec:
    """What the manifests run a service with, as far as a container engine can apply it."""

    service: str
    memory_limit_bytes: int
    run_as_user: int
    env: dict[str, str]


def container_specs(documents: list[dict[str, Any]]) -> dict[str, ContainerSpec]:
    """The four services' container settings from rendered manifests (Deployments and their ConfigMaps)."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in documents if d.get("kind") == "ConfigMap"}
    specs = {}
    for deployment in (d for d in documents if d.get("kind") == "Deployment"):
        name = deployment["metadata"]["labels"].get("app.kubernetes.io/name")
        if name not in SERVICES:
            continue
        pod = deployment["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == name)
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(config_maps[source["configMapRef"]["name"]])
        env.update({e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e})
        user = container.get("securityContext", {}).get("runAsUser") or pod.get("securityContext", {})["runAsUser"]
        specs[name] = ContainerSpec(
            service=name,
            memory_limit_bytes=memory_bytes(container["resources"]["limits"]["memory"]),
            run_as_user=int(user),
            env={k: v for k, v in env.items() if k not in SECRET_OR_ROUTING and not k.endswith("_URL")},
        )
    missing = set(SERVICES) - specs.keys()
    if missing:
        raise ValueError(f"the rendered manifests have no Deployment for {sorted(missing)}")
    return specs


def render_manifests(root: Path) -> list[dict[str, Any]]:
    subprocess.run(
        [sys.executable, "-m", "shop_devtools.cluster", "secrets"], cwd=root, check=True, capture_output=True
    )
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(root / OVERLAY)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def docker_run_argv(spec: ContainerSpec, *, name: str, image: str, port: int, env: Mapping[str, str]) -> list[str]:
    """`docker run` for one service container, as the kubelet would run it: limits, user, read-only, restarts.
    A secret of `env` (`SECRETS`) is named without its value: run it with `secret_env(env)` as the client's
    environment."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=2)"
    argv = [
        "run", "--detach", "--name", name, "--network", "host",
        *pod_constraints(spec.run_as_user, spec.memory_limit_bytes),
        "--tmpfs", "/tmp:rw,size=16m",  # noqa: S108 - the container's own tmpfs
        "--health-cmd", f'python -c "{probe}"', "--health-interval", "2s", "--health-timeout", "2s",
        "--health-retries", "3",
    ]  # fmt: skip
    for key, value in {**spec.env, **env, "HOST": "127.0.0.1", "PORT": str(port)}.items():
        argv += ["--env", key if key in SECRETS else f"{key}={value}"]
    return [*argv, image]


def secret_env(env: Mapping[str, str]) -> dict[str, str]:
    """The values `docker_run_argv` names only: the docker client passes them on from its own environment."""
    return {key: value for key, value in env.items() if key in SECRETS}


class Shop:
    """The containers and the database of one run, and the shop's own credentials of that run (`credentials`, by
    name: each container gets the ones its service reads, through `wiring`)."""

    def __init__(
        self,
        engine: Engine,
        database: DatabaseContainer,
        urls: dict[str, str],
        token: str,
        credentials: Mapping[str, str],
    ) -> None:
        self.engine = engine
        self.database = database
        self.database_urls = urls
        self.chaos_token = token
        self.credentials = dict(credentials)
        self.ports = {name: free_port() for name in ("storefront", "catalog", "users", "payment-a", "payment-b")}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def operator(self) -> Operator:
        """The operator at the storefront's `/ops/`, with this run's credential."""
        return Operator(self.credentials[OPERATOR], "the container proof's own")

    def start(self, specs: Mapping[str, ContainerSpec], version: str) -> None:
        urls = {name: self.url(name) for name in ("catalog", "users")}
        urls["payment"] = f"{self.url('payment-a')},{self.url('payment-b')}"
        common = {"CHAOS_ENABLED": "true", "CHAOS_TOKEN": self.chaos_token}
        plan: dict[str, tuple[str, dict[str, str]]] = {
            "catalog": ("catalog", {}),
            "users": ("users", {"USERS_JWT_PRIVATE_KEY": private_key_pem()}),
            "payment-a": ("payment", {}),
            "payment-b": ("payment", {}),
            "storefront": ("storefront", {}),
        }
        for name, (service, extra) in plan.items():
            env = common | wiring(BY_NAME[service], self.database_urls, urls, self.credentials) | extra
            argv = docker_run_argv(
                specs[service],
                name=f"{PREFIX}-{name}",
                image=image_name(service, version),
                port=self.ports[name],
                env=env,
            )
            self.engine.docker(*argv, env=secret_env(env))
            print(f"e2e    | started {name} ({image_name(service, version)}) on {self.url(name)}", flush=True)

    def wait_ready(self, name: str, timeout: float = 60) -> float:
        started = time.monotonic()
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while time.monotonic() - started < timeout:
                if not readiness(client, self.url(name)):
                    return time.monotonic() - started
                time.sleep(POLL_SECONDS)
        logs = self.engine.docker("logs", "--tail", "30", f"{PREFIX}-{name}", check=False)
        raise RuntimeError(f"{name} not ready after {timeout}s:\n{logs.stdout}{logs.stderr}")

    def remove(self, logs_to: Path | None = None) -> None:
        """Removes every container of the run, keeping their logs in `logs_to`."""
        if logs_to is not None:
            for name in self.ports:
                logs = self.engine.docker("logs", f"{PREFIX}-{name}", check=False)
                (logs_to / f"{name}.log").write_text(logs.stdout + logs.stderr)
        remove_containers(self.engine, [f"{PREFIX}-{name}" for name in self.ports])


def remove_containers(engine: Engine, names: list[str] | None = None) -> None:
    """Removes the named containers, or every container of a run (`PREFIX-...`: leftovers of an interrupted one)."""
    if names is None:
        names = engine.docker("ps", "-aq", "--filter", f"name={PREFIX}-", check=False).stdout.split()
    if names:
        engine.docker("rm", "--force", *names, check=False)


def check_container_hardening(shop: Shop, specs: Mapping[str, ContainerSpec]) -> list[str]:
    """Every container runs as its non-root user with a read-only root filesystem, and answers its probes."""
    problems = []
    for name in shop.ports:
        container, service = f"{PREFIX}-{name}", name.split("-")[0]
        uid = shop.engine.docker("exec", container, "id", "-u", check=False).stdout.strip()
        if uid != str(specs[service].run_as_user) or uid == "0":
            problems.append(f"{name} runs as uid {uid!r}")
        if shop.engine.docker("exec", container, "touch", "/probe-write", check=False).returncode == 0:
            problems.append(f"{name} can write its root filesystem")
        for probe in ("/healthz", "/ready"):
            status = httpx.get(shop.url(name) + probe, timeout=2).status_code
            if status != 200:
                problems.append(f"{name} {probe} answered {status}")
    return problems


def build_images(engine: Engine, base_image: str, root: Path) -> None:
    env = {
        **os.environ,
        "BASE_IMAGE": base_image,
        "DOCKER_BUILD_NETWORK": "host",
        "DOCKER_BUILDKIT": "1",
        "PATH": f"{engine.client_dir}:{os.environ.get('PATH', '')}",
    }
    if CA_BUNDLE.exists():
        env["CA_BUNDLE"] = str(CA_BUNDLE)
    print(f"e2e    | building the images on {base_image}", flush=True)
    subprocess.run([sys.executable, "-m", "shop_devtools.images"], cwd=root, env=env, check=True)
