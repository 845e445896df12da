"""`make run`'s kubelet: what the manifests ask of a service's pods, done for its local processes.

The Deployments in `k8s/base` are the one source: each service's replica count (payment's three), its container's
memory limit (given to the process as `MEMORY_BUDGET_BYTES`, with the base's `MEMORY_BUDGET_FRACTION`, so its
`/healthz` fails where the pod's would), and its liveness and readiness probes (path, period, timeout, failure
threshold). A prober thread per process and probe asks as the kubelet does:

- liveness failing `failureThreshold` times in a row: the process is stopped (SIGTERM, then SIGKILL after the
  stop timeout, as the kubelet uses the grace period) and the restart policy starts it again, the reason kept in
  `run.json`. Failures count only once the process has answered `/healthz` once since it started: the startup
  probe's part (a process that never starts is not killed here; its output says why).
- readiness: the answer of each `/ready` is what takes the process out of rotation (`shopkit.probes`: its answers
  then carry `Connection: close`, and the storefront's balancing leaves a replica that closes for a while), so
  probing it is what routes the checkouts around an unready replica, at no cost on the checkout's path.
"""

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from shop_devtools import processes
from shop_devtools.processes import Child
from shop_devtools.quantities import memory_bytes
from shop_devtools.workspace import repository_root

log = logging.getLogger("shop_devtools.run")


@dataclass(frozen=True)
class Probe:
    path: str
    period: float
    timeout: float
    failure_threshold: int


@dataclass(frozen=True)
class PodSpec:
    replicas: int
    memory_limit: int
    """The container's memory limit in bytes."""
    liveness: Probe
    readiness: Probe


def base_dir() -> Path:
    return repository_root() / "k8s" / "base"


@functools.cache
def pod_specs() -> Mapping[str, PodSpec]:
    """Each service's Deployment in the base (`<service>.yaml`), its container named after it; read once (make
    run's settings take payment's replicas from it, the launch the rest)."""
    specs = {}
    for path in sorted(base_dir().glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "Deployment":
                continue
            name = doc["metadata"]["name"]
            container = next(c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == name)
            specs[name] = PodSpec(
                replicas=int(doc["spec"].get("replicas", 1)),
                memory_limit=memory_bytes(str(container["resources"]["limits"]["memory"])),
                liveness=_probe(container["livenessProbe"]),
                readiness=_probe(container["readinessProbe"]),
            )
    return specs


def _probe(spec: Mapping[str, Any]) -> Probe:
    """A probe as the API server defaults it (period 10 s, timeout 1 s, 3 failures)."""
    return Probe(
        spec["httpGet"]["path"],
        float(spec.get("periodSeconds", 10)),
        float(spec.get("timeoutSeconds", 1)),
        int(spec.get("failureThreshold", 3)),
    )


def shared_config() -> dict[str, str]:
    """The base's `shop-config` literals (what every service's pods read), by name."""
    kustomization = yaml.safe_load((base_dir() / "kustomization.yaml").read_text())
    literals = next(g["literals"] for g in kustomization["configMapGenerator"] if g["name"] == "shop-config")
    return dict(literal.split("=", 1) for literal in literals)


def memory_env(spec: PodSpec, config: Mapping[str, str]) -> dict[str, str]:
    """What makes a local process's memory budget the pod's: its limit, and the fraction of it `/healthz` allows."""
    return {"MEMORY_BUDGET_BYTES": str(spec.memory_limit), "MEMORY_BUDGET_FRACTION": config["MEMORY_BUDGET_FRACTION"]}


def run_probe(
    child: Child, probe: Probe, stop: threading.Event, on_failure: Callable[[Child, str], None] | None
) -> None:
    """Probes `child` every period until `stop`; `on_failure` with the last answer once it failed
    `failure_threshold` times in a row, counted only after a first success of its process (see the module)."""
    pid, failures, started = 0, 0, False
    with httpx.Client(trust_env=False) as client:
        while not stop.wait(probe.period):
            if child.process.poll() is not None:
                continue
            if child.process.pid != pid:
                pid, failures, started = child.process.pid, 0, False
            why = processes.answer(client, child.url + probe.path, probe.timeout)
            started = started or not why
            failures = failures + 1 if why and started else 0
            if failures == probe.failure_threshold and on_failure is not None:
                on_failure(child, f"GET {probe.path} failed {failures} times, {probe.period:.0f} s apart: {why}")


def restart_unhealthy(child: Child, why: str) -> None:
    """What the kubelet does to a container failing liveness: stopped within the grace period, for the restart
    policy to start it again."""
    log.warning("%s: liveness probe failed (%s); stopping it to be started again", child.name, why)
    child.death_reason = "failed liveness"
    processes.signal_group(child, signal.SIGTERM)
    processes.wait_or_kill(child, time.monotonic() + processes.STOP_TIMEOUT_SECONDS)


def start_probers(children: list[Child], specs: Mapping[str, PodSpec]) -> threading.Event:
    """A liveness and a readiness prober (daemon threads) for every child; they stop when the event is set."""
    stop = threading.Event()
    for child in children:
        spec = specs[child.instance.service.name]
        for probe, on_failure in ((spec.liveness, restart_unhealthy), (spec.readiness, None)):
            threading.Thread(target=run_probe, args=(child, probe, stop, on_failure), daemon=True).start()
    return stop
