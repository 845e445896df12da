"""The shop on a laptop cluster: `python -m shop_devtools.cluster <command>` (behind `make kind-up`, ...).

Commands:

- `kind-up [--profile resilient|fragile] [--monitoring] [--autoscaling]`: creates the kind cluster
  `resilient-shop` unless it exists (k8s/kind/cluster.yaml: storefront at http://localhost:8080), builds the images
  (`python -m shop_devtools.images`), tags each by its content, loads those tags into the cluster, then does what
  `deploy` does with them.
- `minikube-up [--profile ...] [--monitoring] [--autoscaling]`: the same on the minikube profile `resilient-shop`
  (`minikube image load`), and prints the URL `minikube service storefront -n shop --url` gives.
- `deploy [--cluster kind|minikube] [--profile ...] [--monitoring] [--autoscaling]`: writes the secrets if missing,
  applies the overlay (`kubectl apply -k k8s/overlays/<cluster>[-fragile][-monitoring]`, through a kustomization in
  .data/deploy/ that pins the loaded images and adds the optional components) and waits until every pod is Ready
  (`kubectl rollout status` of each StatefulSet and Deployment in namespace shop). `--autoscaling` adds
  k8s/components/autoscaling (payment's HorizontalPodAutoscaler) and the metrics API it reads: on kind
  k8s/components/metrics-server, on minikube its `metrics-server` addon.
- `leak [--cluster ...] [--mb-per-second N] [--max-mb N]`: makes exactly one Ready payment pod leak memory
  (`POST /chaos/leak` from inside that pod, with the chaos token its environment holds from the `chaos` Secret).
- `status [--cluster ...]`: ReplicaSets, pods, Services, PodDisruptionBudgets and HorizontalPodAutoscalers of
  namespace `shop`.
- `down [--cluster ...]`: deletes the cluster(s) the `*-up` commands created (both when no cluster is named).
- `secrets`: writes the random secrets kustomize reads (k8s/base/generated/, git-ignored) unless they exist.

Every command prints each external command before running it (`--dry-run` prints them only), talks to the
cluster through an explicit kubectl context (`kind-resilient-shop` or `resilient-shop`, never whatever context is
current), and stops with a clear message when a tool it needs (docker, kind, minikube, kubectl) is missing.
"""

import argparse
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from shop_devtools.workspace import WorkspaceError, private_key_pem, project_version, repository_root

Cluster = Literal["kind", "minikube"]
Profile = Literal["resilient", "fragile"]

CLUSTER_NAME = "resilient-shop"
"""The kind cluster's name and the minikube profile's."""
NAMESPACE = "shop"
DATABASE_SERVICES = ("catalog", "users", "payment")
SERVICE_PORTS = {"storefront": 8080, "catalog": 8081, "users": 8082, "payment": 8083}
IMAGE_REPOSITORY = "resilient-shop"
POSTGRES_HOST = "postgres.shop.svc"
KIND_HOST_PORTS = {8080: "storefront", 3000: "Grafana"}
KIND_SHOP_URL = "http://localhost:8080"
KIND_GRAFANA_URL = "http://localhost:3000"
STOREFRONT_NODE_PORT = 30080
DEPLOYED = Path(".data") / "deploy"
"""The images `kind-up`/`minikube-up` loaded last (`images.json`), and per overlay a kustomization that applies it
with those tags and the optional components (`<overlay>[-autoscaling]/kustomization.yaml`): what `deploy` applies."""
LOADED_IMAGES = DEPLOYED / "images.json"
REMEMBERED = Path(".data") / "cluster.mk"
"""Written by `kind-up`/`minikube-up`, removed by `down`: which cluster the Makefile's other targets (`leak`,
`status`, `load`, `drill`) aim at, and the shop's URL there. The Makefile includes it; a variable given on the
command line (`make drill SHOP_URL=...`) still wins."""
ROLLOUT_TIMEOUT = "300s"
LIVENESS_LEAK_MIB_PER_SECOND = 3.0
"""A leak liveness catches: from the memory budget (where /healthz turns 503) to the limit there is room for this
rate over liveness's window and the drain (tests/k8s/test_profiles.py computes it from the manifests)."""
OOM_LEAK_MIB_PER_SECOND = 40.0
"""A leak that outruns liveness and ends as `OOMKilled`, to show the other way a leaking pod dies."""
MINIKUBE_MEMORY_MB = 4096
AUTOSCALED = "payment"
"""The Deployment k8s/components/autoscaling gives a HorizontalPodAutoscaler (of the same name)."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

TOOL_HINTS = {
    "docker": "Docker builds the images: https://docs.docker.com/get-docker/",
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "minikube": "https://minikube.sigs.k8s.io/docs/start/",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/",
}

GENERATED_FILES = (
    "postgres.env",
    *(f"{service}-database.env" for service in DATABASE_SERVICES),
    "users-jwt-private-key.pem",
    "chaos.env",
)
"""What the base's secretGenerator reads from k8s/base/generated/."""

LEAK_SCRIPT = """\
import json, os, sys, urllib.error, urllib.request
port, rate, cap = sys.argv[1:4]
body = {"mb_per_second": float(rate)}
if cap:
    body["max_mb"] = int(cap)
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/chaos/leak",
    data=json.dumps(body).encode(),
    method="POST",
    headers={"Content-Type": "application/json", "X-Chaos-Token": os.environ.get("CHAOS_TOKEN", "")},
)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    sys.exit(f"POST /chaos/leak answered {error.code}: {error.read().decode()}")
"""
"""Run by the pod's own Python (the image has no curl): the token never leaves the pod."""


class ClusterError(Exception):
    """A problem the user can fix; printed without a traceback."""


@dataclass(frozen=True)
class Target:
    cluster: Cluster
    profile: Profile = "resilient"
    monitoring: bool = False
    autoscaling: bool = False

    @property
    def overlay(self) -> str:
        return self.cluster + ("-fragile" if self.profile == "fragile" else "") + ("-monitoring" * self.monitoring)

    @property
    def deployment(self) -> str:
        """The name of what gets applied: the overlay, plus the components no overlay has."""
        return self.overlay + ("-autoscaling" * self.autoscaling)

    @property
    def components(self) -> list[str]:
        """The components of k8s/components/ added to the overlay. minikube serves the metrics API with its own
        addon (`minikube_addon_argv`); kind has none, so it gets ours."""
        if not self.autoscaling:
            return []
        return ["autoscaling", *(["metrics-server"] if self.cluster == "kind" else [])]

    @property
    def context(self) -> str:
        return kube_context(self.cluster)


def kube_context(cluster: Cluster) -> str:
    return f"kind-{CLUSTER_NAME}" if cluster == "kind" else CLUSTER_NAME


# --- secrets -------------------------------------------------------------------------------------------------


def database_url(service: str, password: str) -> str:
    return f"postgresql://{service}:{password}@{POSTGRES_HOST}:5432/{service}"


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def _env_text(values: Mapping[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in values.items())


def generate_secrets(generated_dir: Path) -> list[Path]:
    """Writes the secrets the base's secretGenerator reads, each file only if missing; returns those written.

    Passwords and the chaos token are random (hex: safe in URLs and env files); the users' key is a fresh Ed25519
    key. Existing files are kept, because the PostgreSQL volume remembers the superuser password it was created
    with; the DATABASE_URL files are derived from postgres.env, so they always agree with it.
    """
    written = []
    postgres_env = generated_dir / "postgres.env"
    if not postgres_env.exists():
        passwords = {"POSTGRES_PASSWORD": secrets.token_hex(24)}
        passwords |= {f"{service.upper()}_DB_PASSWORD": secrets.token_hex(24) for service in DATABASE_SERVICES}
        _write_private(postgres_env, _env_text(passwords))
        written.append(postgres_env)
    passwords = read_env_file(postgres_env)
    for service in DATABASE_SERVICES:
        path = generated_dir / f"{service}-database.env"
        text = _env_text({"DATABASE_URL": database_url(service, passwords[f"{service.upper()}_DB_PASSWORD"])})
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            _write_private(path, text)
            written.append(path)
    key = generated_dir / "users-jwt-private-key.pem"
    if not key.exists():
        _write_private(key, private_key_pem())
        written.append(key)
    chaos = generated_dir / "chaos.env"
    if not chaos.exists():
        _write_private(chaos, _env_text({"CHAOS_TOKEN": secrets.token_hex(32)}))
        written.append(chaos)
    return written


# --- commands, as argv lists ---------------------------------------------------------------------------------


def kubectl(context: str, *args: str) -> list[str]:
    return ["kubectl", "--context", context, *args]


def kind_create_argv(config: Path) -> list[str]:
    return ["kind", "create", "cluster", "--name", CLUSTER_NAME, "--config", str(config), "--wait", "120s"]


def kind_load_argv(images: Sequence[str]) -> list[str]:
    return ["kind", "load", "docker-image", "--name", CLUSTER_NAME, *images]


def minikube_start_argv() -> list[str]:
    """With Calico: minikube's default network plugin ignores NetworkPolicies, and the shop relies on them."""
    return [
        "minikube",
        "start",
        "--profile",
        CLUSTER_NAME,
        f"--memory={MINIKUBE_MEMORY_MB}",
        "--cpus=2",
        "--cni=calico",
    ]


def minikube_load_argv(image: str) -> list[str]:
    return ["minikube", "image", "load", "--profile", CLUSTER_NAME, image]


def minikube_addon_argv(addon: str) -> list[str]:
    return ["minikube", "addons", "enable", addon, "--profile", CLUSTER_NAME]


def minikube_service_argv() -> list[str]:
    return ["minikube", "service", "storefront", "--namespace", NAMESPACE, "--profile", CLUSTER_NAME, "--url"]


def build_images_argv() -> list[str]:
    return [sys.executable, "-m", "shop_devtools.images"]


def list_images_argv() -> list[str]:
    return [sys.executable, "-m", "shop_devtools.images", "--list"]


def apply_argv(context: str, overlay_dir: Path) -> list[str]:
    return kubectl(context, "apply", "--kustomize", str(overlay_dir))


def workloads_argv(context: str) -> list[str]:
    return kubectl(context, "get", "statefulsets,deployments", "--namespace", NAMESPACE, "--output", "name")


def rollout_argv(context: str, workload: str) -> list[str]:
    """Returns once every replica of `workload` runs the applied template and is Ready (old ones gone)."""
    return kubectl(context, "rollout", "status", workload, "--namespace", NAMESPACE, f"--timeout={ROLLOUT_TIMEOUT}")


def payment_pods_argv(context: str) -> list[str]:
    selector = "app.kubernetes.io/name=payment,app.kubernetes.io/part-of=resilient-shop"
    return kubectl(context, "get", "pods", "--namespace", NAMESPACE, "--selector", selector, "--output", "json")


def leak_argv(context: str, pod: str, *, mb_per_second: float, max_mb: int | None) -> list[str]:
    port = str(SERVICE_PORTS["payment"])
    cap = "" if max_mb is None else str(max_mb)
    return kubectl(
        context,
        "exec",
        pod,
        "--namespace",
        NAMESPACE,
        "--container",
        "payment",
        "--",
        "python",
        "-c",
        LEAK_SCRIPT,
        port,
        str(mb_per_second),
        cap,
    )


def status_argv(context: str) -> list[str]:
    return kubectl(
        context, "get", "statefulsets,replicasets,pods,services,pdb,hpa", "--namespace", NAMESPACE, "-o", "wide"
    )


def deployment_argv(context: str, name: str) -> list[str]:
    """The Deployment as JSON, or nothing when it does not exist."""
    return kubectl(
        context, "get", "deployment", name, "--namespace", NAMESPACE, "--ignore-not-found", "--output", "json"
    )


def set_last_applied_argv(context: str, path: Path) -> list[str]:
    return kubectl(context, "apply", "set-last-applied", "--filename", str(path))


def applied_without_replicas(deployment: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Deployment's last-applied configuration (what `kubectl apply` compares the next apply with) without
    `spec.replicas`; None when it names no replica count (nothing to forget, or never applied)."""
    applied = deployment.get("metadata", {}).get("annotations", {}).get(LAST_APPLIED)
    if not applied:
        return None
    configuration: dict[str, Any] = json.loads(applied)
    if "replicas" not in configuration.get("spec", {}):
        return None
    del configuration["spec"]["replicas"]
    return configuration


def content_tag(ref: str, image_id: str) -> str:
    """`ref` retagged with its image's content: `resilient-shop/payment:0.1.0` with id `sha256:3f9c...` becomes
    `resilient-shop/payment:0.1.0-3f9c...` (12 hex digits). A changed image gets a new tag, so applying the manifests
    again rolls it out; an unchanged one keeps its tag, and nothing restarts."""
    digest = image_id.strip().removeprefix("sha256:")
    if len(digest) < 12:
        raise ClusterError(f"docker gave no image id for {ref}: {image_id!r}")
    return f"{ref}-{digest[:12]}"


def inspect_id_argv(ref: str) -> list[str]:
    return ["docker", "image", "inspect", "--format", "{{.Id}}", ref]


def pinned_kustomization(overlay: Path, at: Path, images: Sequence[str], components: Sequence[Path] = ()) -> str:
    """A kustomization in `at` that applies `overlay` with exactly these image references (none: the overlay's own)
    and these components added (kustomize wants both as relative paths)."""
    lines = [
        "# written by shop_devtools.cluster: the overlay, the images kind-up/minikube-up loaded last, the components",
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "resources:",
        f"  - {os.path.relpath(overlay, at)}",
    ]
    if components:
        lines += ["components:", *(f"  - {os.path.relpath(component, at)}" for component in components)]
    if images:
        lines.append("images:")
    for ref in images:
        name, tag = ref.rsplit(":", 1)
        lines += [f"  - name: {name}", f"    newTag: {tag}"]
    return "\n".join(lines) + "\n"


def image_refs(listed: str, version: str) -> list[str]:
    """Image references from `python -m shop_devtools.images --list`: bare names (`catalog`) get the project's
    repository and version; full references are kept as they are."""
    refs = []
    for line in listed.splitlines():
        name = line.strip()
        if not name:
            continue
        refs.append(name if "/" in name or ":" in name else f"{IMAGE_REPOSITORY}/{name}:{version}")
    if not refs:
        raise ClusterError("`python -m shop_devtools.images --list` listed no image")
    if latest := [ref for ref in refs if ref.endswith(":latest") or ":" not in ref.rsplit("/", 1)[-1]]:
        raise ClusterError(f"images must carry a version tag, never latest: {', '.join(latest)}")
    return refs


# --- pods ----------------------------------------------------------------------------------------------------


def is_ready(pod: Mapping[str, Any]) -> bool:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    status = pod.get("status", {})
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))


def ready_pod_names(pod_list: Mapping[str, Any]) -> list[str]:
    return sorted(pod["metadata"]["name"] for pod in pod_list.get("items", []) if is_ready(pod))


def pick_ready_pod(pod_list: Mapping[str, Any]) -> str:
    """Exactly one Ready pod of `kubectl get pods -o json` output: the first by name."""
    ready = ready_pod_names(pod_list)
    if not ready:
        total = len(pod_list.get("items", []))
        raise ClusterError(f"no Ready payment pod ({total} payment pods in namespace {NAMESPACE}); see `make status`")
    return ready[0]


# --- running -------------------------------------------------------------------------------------------------


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        lines = [
            f"{tool} is required but was not found on PATH ({TOOL_HINTS.get(tool, 'install it')})" for tool in missing
        ]
        raise ClusterError("\n".join(lines))


def ports_in_use(ports: Iterable[int], host: str = "127.0.0.1") -> list[int]:
    busy = []
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


@dataclass
class Runner:
    dry_run: bool = False

    @staticmethod
    def display(argv: Sequence[str]) -> str:
        """The command as a shell would take it, with a multi-line script argument shown as '<script>'."""
        return " ".join("'<script>'" if "\n" in arg else shlex.quote(arg) for arg in argv)

    def show(self, argv: Sequence[str]) -> None:
        print(f"$ {self.display(argv)}", flush=True)

    def run(self, argv: Sequence[str]) -> None:
        self.show(argv)
        if self.dry_run:
            return
        try:
            result = subprocess.run(argv, check=False)
        except FileNotFoundError:
            raise ClusterError(f"{argv[0]} is required but was not found on PATH") from None
        if result.returncode != 0:
            raise ClusterError(f"`{self.display(argv)}` failed (exit {result.returncode})")

    def succeeds(self, argv: Sequence[str]) -> bool:
        """Runs a read-only check quietly; True when it exits 0."""
        self.show(argv)
        try:
            return subprocess.run(argv, check=False, capture_output=True).returncode == 0
        except FileNotFoundError:
            raise ClusterError(f"{argv[0]} is required but was not found on PATH") from None

    def output(self, argv: Sequence[str], *, check: bool = True) -> str:
        """Runs a read-only command and returns its stdout (dry runs run these too: they change nothing)."""
        self.show(argv)
        try:
            result = subprocess.run(argv, check=False, capture_output=True, text=True)
        except FileNotFoundError:
            raise ClusterError(f"{argv[0]} is required but was not found on PATH") from None
        if check and result.returncode != 0:
            raise ClusterError(f"`{self.display(argv)}` failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout


@dataclass
class Shop:
    root: Path
    runner: Runner

    @property
    def generated_dir(self) -> Path:
        return self.root / "k8s" / "base" / "generated"

    def overlay_dir(self, target: Target) -> Path:
        path = self.root / "k8s" / "overlays" / target.overlay
        if not path.is_dir():
            raise ClusterError(f"no overlay {path.relative_to(self.root)}")
        if target.monitoring and not (self.root / "k8s" / "components" / "monitoring").is_dir():
            raise ClusterError("--monitoring needs k8s/components/monitoring, which this checkout does not have")
        if target.autoscaling and target.profile == "fragile":
            raise ClusterError(
                "--autoscaling keeps at least 3 payment replicas, which is what --profile fragile takes away: "
                "autoscaling goes with the resilient profile only"
            )
        for component in self.component_dirs(target):
            if not component.is_dir():
                raise ClusterError(f"--autoscaling needs {component.relative_to(self.root)}, which is missing")
        return path

    def component_dirs(self, target: Target) -> list[Path]:
        return [self.root / "k8s" / "components" / name for name in target.components]

    def secrets(self) -> None:
        written = generate_secrets(self.generated_dir)
        for path in written:
            print(f"wrote {path.relative_to(self.root)}", flush=True)
        if not written:
            print(f"secrets: {self.generated_dir.relative_to(self.root)}/ is complete, kept as it is", flush=True)

    def images(self) -> list[str]:
        """Builds the images and tags each by its content (`content_tag`); returns those references, which are what
        gets loaded into the cluster and deployed."""
        self.runner.run(build_images_argv())
        tagged = []
        for ref in image_refs(self.runner.output(list_images_argv()), project_version(self.root)):
            by_content = content_tag(ref, self.runner.output(inspect_id_argv(ref))) if not self.runner.dry_run else ref
            if by_content != ref:
                self.runner.run(["docker", "tag", ref, by_content])
            tagged.append(by_content)
        if not self.runner.dry_run:
            (self.root / LOADED_IMAGES).parent.mkdir(parents=True, exist_ok=True)
            (self.root / LOADED_IMAGES).write_text(json.dumps(tagged, indent=2) + "\n", encoding="utf-8")
        return tagged

    def deployable(self, target: Target) -> Path:
        """The overlay, pinned to the images loaded last when there are some and with the target's components (as
        it is when there is neither)."""
        overlay = self.overlay_dir(target)
        loaded = self.root / LOADED_IMAGES
        images = json.loads(loaded.read_text(encoding="utf-8")) if loaded.is_file() else []
        components = self.component_dirs(target)
        if not images and not components:
            return overlay
        pinned = self.root / DEPLOYED / target.deployment
        pinned.mkdir(parents=True, exist_ok=True)
        text = pinned_kustomization(overlay, pinned, images, components)
        (pinned / "kustomization.yaml").write_text(text, encoding="utf-8")
        return pinned

    def forget_applied_replicas(self, context: str, at: Path) -> None:
        """Takes `spec.replicas` out of what payment's Deployment was last applied with, as `kubectl apply
        edit-last-applied` would by hand. The autoscaling component drops the field, and `kubectl apply` deletes a
        field it applied before and no longer gets: the Deployment would fall back to 1 replica until the HPA
        raised it again. Without it in the last-applied configuration, apply leaves the count to the HPA."""
        found = self.runner.output(deployment_argv(context, AUTOSCALED))
        configuration = applied_without_replicas(json.loads(found)) if found.strip() else None
        if configuration is None:
            return
        path = at / f"{AUTOSCALED}-last-applied.json"
        path.write_text(json.dumps(configuration, indent=2) + "\n", encoding="utf-8")
        self.runner.run(set_last_applied_argv(context, path))

    def require_context(self, cluster: Cluster) -> None:
        contexts = self.runner.output(["kubectl", "config", "get-contexts", "--output", "name"]).split()
        if kube_context(cluster) not in contexts:
            up = "kind-up" if cluster == "kind" else "minikube-up"
            raise ClusterError(f"no kubectl context {kube_context(cluster)}: create the cluster with `make {up}`")

    def deploy(self, target: Target) -> None:
        require_tools("kubectl", *(["minikube"] if target.autoscaling and target.cluster == "minikube" else []))
        overlay = self.deployable(target)
        self.require_context(target.cluster)
        self.secrets()
        if target.autoscaling:
            if target.cluster == "minikube":
                self.runner.run(minikube_addon_argv("metrics-server"))
            self.forget_applied_replicas(target.context, overlay)
        self.runner.run(apply_argv(target.context, overlay))
        workloads = self.runner.output(workloads_argv(target.context)).split()
        if not workloads and not self.runner.dry_run:
            raise ClusterError(f"nothing to wait for: no StatefulSet or Deployment in namespace {NAMESPACE}")
        for workload in workloads:
            self.runner.run(rollout_argv(target.context, workload))

    def kind_up(self, target: Target) -> None:
        require_tools("docker", "kind", "kubectl")
        self.overlay_dir(target)
        clusters = self.runner.output(["kind", "get", "clusters"]).split()
        if CLUSTER_NAME in clusters:
            print(f"kind cluster {CLUSTER_NAME} exists: reusing it", flush=True)
        else:
            if busy := ports_in_use(KIND_HOST_PORTS):
                names = ", ".join(f"{port} ({KIND_HOST_PORTS[port]})" for port in busy)
                raise ClusterError(f"the kind cluster publishes these ports on 127.0.0.1, which are in use: {names}")
            self.runner.run(kind_create_argv(self.root / "k8s" / "kind" / "cluster.yaml"))
        self.runner.run(kind_load_argv(self.images()))
        self.deploy(target)
        self.remember("kind", KIND_SHOP_URL)
        print(f"\nresilient-shop is up ({target.profile}) on kind: {KIND_SHOP_URL}", flush=True)
        if target.monitoring:
            print(f"Grafana: {KIND_GRAFANA_URL}", flush=True)
        if target.autoscaling:
            print(f"payment autoscales: kubectl --context {target.context} -n {NAMESPACE} get hpa -w", flush=True)

    def minikube_up(self, target: Target) -> None:
        require_tools("docker", "minikube", "kubectl")
        self.overlay_dir(target)
        if self.runner.succeeds(["minikube", "status", "--profile", CLUSTER_NAME]):
            print(f"minikube profile {CLUSTER_NAME} is running: reusing it", flush=True)
        else:
            self.runner.run(minikube_start_argv())
        for image in self.images():
            self.runner.run(minikube_load_argv(image))
        self.deploy(target)
        ip = self.runner.output(["minikube", "ip", "--profile", CLUSTER_NAME]).strip() or "127.0.0.1"
        self.remember("minikube", f"http://{ip}:{STOREFRONT_NODE_PORT}")
        if target.autoscaling:
            print(f"payment autoscales: kubectl --context {target.context} -n {NAMESPACE} get hpa -w", flush=True)
        print(f"\nresilient-shop is up ({target.profile}) on minikube; its URL:", flush=True)
        print("(with the docker driver on macOS or Windows this keeps a tunnel open: Ctrl-C closes it)", flush=True)
        self.runner.run(minikube_service_argv())

    def leak(self, cluster: Cluster, *, mb_per_second: float, max_mb: int | None) -> None:
        require_tools("kubectl")
        context = kube_context(cluster)
        pods = json.loads(self.runner.output(payment_pods_argv(context)))
        pod = pick_ready_pod(pods)
        print(
            f"leaking {mb_per_second} MiB/s in {pod}, 1 of {len(ready_pod_names(pods))} Ready payment pods", flush=True
        )
        self.runner.run(leak_argv(context, pod, mb_per_second=mb_per_second, max_mb=max_mb))
        print(f"watch it: kubectl --context {context} get rs,pods -n {NAMESPACE} -w", flush=True)

    def status(self, cluster: Cluster) -> None:
        require_tools("kubectl")
        self.runner.run(status_argv(kube_context(cluster)))
        if cluster == "kind":
            print(f"\nshop: {KIND_SHOP_URL}", flush=True)
        else:
            print(f"\nshop: the URL `{shlex.join(minikube_service_argv())}` prints", flush=True)

    def remember(self, cluster: Cluster, shop_url: str) -> None:
        lines = [
            "# written by `make kind-up` / `make minikube-up`, removed by `make down`: what the other targets aim at",
            f"CLUSTER = {cluster}",
            f"SHOP_URL = {shop_url}",
            f"KUBE_CONTEXT = {kube_context(cluster)}",
        ]
        if not self.runner.dry_run:
            path = self.root / REMEMBERED
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"make leak, status, load and drill now aim at {cluster} ({shop_url}): {REMEMBERED}", flush=True)

    def down(self, cluster: Cluster | None) -> None:
        """Deletes the named cluster, or each one whose tool is installed (deleting a missing one is a no-op)."""
        if not self.runner.dry_run:
            (self.root / REMEMBERED).unlink(missing_ok=True)
        if cluster is not None:
            require_tools(cluster)
            self.runner.run(down_argv(cluster))
            return
        present = [name for name in get_args(Cluster) if shutil.which(name)]
        if not present:
            require_tools(*get_args(Cluster))
        for name in present:
            self.runner.run(down_argv(name))


def down_argv(cluster: Cluster) -> list[str]:
    if cluster == "kind":
        return ["kind", "delete", "cluster", "--name", CLUSTER_NAME]
    return ["minikube", "delete", "--profile", CLUSTER_NAME]


# --- command line --------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m shop_devtools.cluster", description=__doc__.split("\n\n")[0])
    cli.add_argument(
        "--dry-run",
        action="store_true",
        help="print the commands that change the cluster without running them (read-only queries still run)",
    )
    commands = cli.add_subparsers(dest="command", required=True, metavar="command")

    def with_cluster(sub: argparse.ArgumentParser, *, default: Cluster | None = "kind") -> None:
        sub.add_argument("--cluster", choices=get_args(Cluster), default=default)

    def with_profile(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--profile", choices=get_args(Profile), default="resilient")
        sub.add_argument("--monitoring", action="store_true", help="add Prometheus and Grafana")
        sub.add_argument(
            "--autoscaling",
            action="store_true",
            help="scale payment on CPU between 3 and 5 replicas (a HorizontalPodAutoscaler, and metrics-server)",
        )

    with_profile(commands.add_parser("kind-up", help="create the kind cluster if needed, build, load, deploy"))
    with_profile(commands.add_parser("minikube-up", help="start minikube if needed, build, load, deploy"))
    deploy = commands.add_parser("deploy", help="apply the overlay to an existing cluster and wait for it")
    with_cluster(deploy)
    with_profile(deploy)
    leak = commands.add_parser("leak", help="make exactly one Ready payment pod leak memory")
    with_cluster(leak)
    leak.add_argument(
        "--mb-per-second",
        type=float,
        default=LIVENESS_LEAK_MIB_PER_SECOND,
        help=f"growth rate in MiB/s (default {LIVENESS_LEAK_MIB_PER_SECOND:g}: liveness restarts the pod before its "
        f"memory limit; {OOM_LEAK_MIB_PER_SECOND:g} outruns it and ends as OOMKilled)",
    )
    leak.add_argument("--max-mb", type=int, default=None, help="stop growing after this many MiB (default: never)")
    with_cluster(commands.add_parser("status", help="ReplicaSets, pods, Services and HPAs of namespace shop"))
    with_cluster(commands.add_parser("down", help="delete the cluster (every one *-up made by default)"), default=None)
    commands.add_parser("secrets", help="write the random secrets kustomize reads, unless they exist")
    return cli


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        shop = Shop(repository_root(), Runner(dry_run=args.dry_run))
        match args.command:
            case "kind-up":
                shop.kind_up(Target("kind", args.profile, args.monitoring, args.autoscaling))
            case "minikube-up":
                shop.minikube_up(Target("minikube", args.profile, args.monitoring, args.autoscaling))
            case "deploy":
                shop.deploy(Target(args.cluster, args.profile, args.monitoring, args.autoscaling))
            case "leak":
                shop.leak(args.cluster, mb_per_second=args.mb_per_second, max_mb=args.max_mb)
            case "status":
                shop.status(args.cluster)
            case "down":
                shop.down(args.cluster)
            case "secrets":
                shop.secrets()
    except (ClusterError, WorkspaceError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
