"""What each cluster command does, step by step (`Shop`): the secrets, the images built, tagged by their content
and loaded, the overlay applied (pinned to those images, with the optional components, through a kustomization in
.data/deploy/) and waited for, the leak (through the Kubernetes client: `kube`), the status, the cluster remembered
for the Makefile in .data/cluster.mk and deleted again."""

import asyncio
import json
import os
import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml

from shop_devtools.chaos import Chaos, ChaosRefused, Send
from shop_devtools.cluster import commands, kube
from shop_devtools.cluster.commands import CLUSTER_NAME, KIND_HOST_PORTS, NAMESPACE, Cluster, Target, kube_context
from shop_devtools.cluster.generated_secrets import generate_secrets
from shop_devtools.cluster.pods import ready_pods
from shop_devtools.cluster.runner import ClusterError, Runner, require_tools
from shop_devtools.images import DRILL, image_name
from shop_devtools.processes import ports_in_use
from shop_devtools.topology import SHOP_URL
from shop_devtools.workspace import project_version

DEPLOYED = Path(".data") / "deploy"
"""The images `kind-up`/`minikube-up` loaded last (`images.json`), and per overlay a kustomization that applies it
with those tags and the optional components (`<overlay>[-autoscaling]/kustomization.yaml`): what `deploy` applies."""
LOADED_IMAGES = DEPLOYED / "images.json"
REMEMBERED = Path(".data") / "cluster.mk"
"""Written by `kind-up`/`minikube-up`, removed by `down`, kept by `make clean` (as `images.json` is): which cluster
the Makefile's other targets (`deploy`, `leak`, `status`, `load`, `drill`) aim at, and the shop's URL there. The
Makefile includes it; a variable given on the command line (`make drill SHOP_URL=...`) still wins."""
AUTOSCALED = "payment"
"""The Deployment k8s/components/autoscaling gives a HorizontalPodAutoscaler (of the same name)."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KIND_GRAFANA_URL = "http://localhost:3000"
STOREFRONT_NODE_PORT = 30080
SHOP_PODS = "app.kubernetes.io/name in (storefront,catalog,users,payment)"
LISTEN_TIMEOUT_SECONDS = 120


def image_refs(listed: str, version: str) -> list[str]:
    """Image references from `python -m shop_devtools.images --list`: bare names (`catalog`) get the project's
    repository and version; full references are kept as they are."""
    refs = [name if "/" in name or ":" in name else image_name(name, version) for name in listed.split()]
    if not refs:
        raise ClusterError("`python -m shop_devtools.images --list` listed no image")
    if latest := [ref for ref in refs if ref.endswith(":latest") or ":" not in ref.rsplit("/", 1)[-1]]:
        raise ClusterError(f"images must carry a version tag, never latest: {', '.join(latest)}")
    return refs


def content_tag(ref: str, image_id: str) -> str:
    """`ref` retagged with its image's content: `resilient-shop/payment:0.1.0` with id `sha256:3f9c...` becomes
    `resilient-shop/payment:0.1.0-3f9c...` (12 hex digits). A changed image gets a new tag, so applying the manifests
    again rolls it out; an unchanged one keeps its tag, and nothing restarts."""
    digest = image_id.strip().removeprefix("sha256:")
    if len(digest) < 12:
        raise ClusterError(f"docker gave no image id for {ref}: {image_id!r}")
    return f"{ref}-{digest[:12]}"


def pinned_kustomization(overlay: Path, at: Path, images: Sequence[str], components: Sequence[Path] = ()) -> str:
    """A kustomization in `at` that applies `overlay` with exactly these image references (none: the overlay's own)
    and these components added (kustomize wants both as relative paths)."""
    kustomization: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    kustomization["resources"] = [os.path.relpath(overlay, at)]
    if components:
        kustomization["components"] = [os.path.relpath(component, at) for component in components]
    if images:
        kustomization["images"] = [dict(zip(["name", "newTag"], ref.rsplit(":", 1), strict=True)) for ref in images]
    header = "# written by shop_devtools.cluster: the overlay, the images loaded last, the components"
    return f"{header}\n{yaml.safe_dump(kustomization, sort_keys=False)}"


def payment_cluster(cluster: Cluster) -> kube.Cluster:
    """The payment pods of the cluster, through the Kubernetes client and the cluster's own kubeconfig context."""
    if (api := kube.connect(kube_context(cluster))) is None:
        raise ClusterError(missing_context(cluster))
    return kube.Cluster(api, NAMESPACE, container="payment", context=kube_context(cluster))


def missing_context(cluster: Cluster) -> str:
    return f"no kubectl context {kube_context(cluster)}: create the cluster with `make {cluster}-up`"


async def not_sent(
    method: str, path: str, body: Mapping[str, Any] | None, headers: Mapping[str, str]
) -> tuple[int, str]:
    """The transport of `--dry-run`: sends nothing, as if accepted."""
    return 202, "{}"


def answers_ready(shop: kube.Cluster, pod: str, port: int) -> bool:
    try:
        return shop.request(pod, port, "GET", "/ready", timeout=2)[0] == 200
    except Exception:  # refused, reset, timed out: the app does not listen yet
        return False


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
        if target.autoscaling and target.profile == "fragile":
            raise ClusterError(
                "--autoscaling keeps at least 3 payment replicas, which is what --profile fragile takes away: "
                "autoscaling goes with the resilient profile only"
            )
        if target.scheduled_drill and not target.monitoring:
            raise ClusterError(
                "--scheduled-drill needs --monitoring (MONITORING=1): the drill pushes its verdict to the monitoring "
                "component's Pushgateway, and its alerts are Prometheus rules"
            )
        wanted = [*self.component_dirs(target), *[self.root / "k8s" / "components" / "monitoring"] * target.monitoring]
        if missing := [component for component in wanted if not component.is_dir()]:
            raise ClusterError(f"{missing[0].relative_to(self.root)} is missing from this checkout")
        return path

    def component_dirs(self, target: Target) -> list[Path]:
        return [self.root / "k8s" / "components" / name for name in target.components]

    def secrets(self) -> None:
        written = generate_secrets(self.generated_dir)
        for path in written:
            print(f"wrote {path.relative_to(self.root)}", flush=True)
        if not written:
            print(f"secrets: {self.generated_dir.relative_to(self.root)}/ is complete, kept as it is", flush=True)

    def images(self, names: Sequence[str] = ()) -> list[str]:
        """Builds the images (`names`, default every service's) and tags each by its content (`content_tag`);
        returns those references, which are what gets loaded into the cluster and deployed."""
        self.runner.run(commands.build_images_argv(*names))
        refs = image_refs(self.runner.output(commands.list_images_argv(*names)), project_version(self.root))
        if self.runner.dry_run:
            return refs
        tagged = [content_tag(ref, self.runner.output(commands.inspect_id_argv(ref))) for ref in refs]
        for ref, tag in zip(refs, tagged, strict=True):
            self.runner.run(["docker", "tag", ref, tag])
        (self.root / LOADED_IMAGES).parent.mkdir(parents=True, exist_ok=True)
        (self.root / LOADED_IMAGES).write_text(json.dumps(tagged, indent=2) + "\n", encoding="utf-8")
        return tagged

    def deployable(self, target: Target) -> Path:
        """The overlay, pinned to the images loaded last when there are some and with the target's components (as
        it is when there is neither)."""
        overlay, loaded = self.overlay_dir(target), self.root / LOADED_IMAGES
        images = json.loads(loaded.read_text(encoding="utf-8")) if loaded.is_file() else []
        components = self.component_dirs(target)
        if not images and not components:
            return overlay
        pinned = self.root / DEPLOYED / target.deployment
        pinned.mkdir(parents=True, exist_ok=True)
        (pinned / "kustomization.yaml").write_text(pinned_kustomization(overlay, pinned, images, components), "utf-8")
        return pinned

    def forget_applied_replicas(self, context: str, at: Path) -> None:
        """Takes `spec.replicas` out of what payment's Deployment was last applied with, as `kubectl apply
        edit-last-applied` would by hand. The autoscaling component drops the field, and `kubectl apply` deletes a
        field it applied before and no longer gets: the Deployment would fall back to 1 replica until the HPA
        raised it again. Without it in the last-applied configuration, apply leaves the count to the HPA."""
        found = self.runner.output(commands.deployment_argv(context, AUTOSCALED))
        annotations = json.loads(found).get("metadata", {}).get("annotations", {}) if found.strip() else {}
        applied: dict[str, Any] = json.loads(annotations.get(LAST_APPLIED) or "{}")
        if "replicas" not in applied.get("spec", {}):
            return  # no Deployment yet, never applied, or applied without a count already: nothing to forget
        del applied["spec"]["replicas"]
        path = at / f"{AUTOSCALED}-last-applied.json"
        path.write_text(json.dumps(applied, indent=2) + "\n", encoding="utf-8")
        self.runner.run(commands.set_last_applied_argv(context, path))

    def load(self, cluster: Cluster, names: Sequence[str] = ()) -> None:
        """Builds the images (`names`, default every service's) and loads them into the cluster's node: kind imports
        the archive `docker save` wrote, minikube takes each through `minikube image load`."""
        require_tools("docker", cluster)
        archive, images = self.root / DEPLOYED / "images.tar", self.images(names)
        kind = [commands.docker_save_argv(archive, images), commands.kind_load_argv(archive)]
        for argv in kind if cluster == "kind" else map(commands.minikube_load_argv, images):
            self.runner.run(argv)
        archive.unlink(missing_ok=True)

    def deploy(self, target: Target) -> None:
        """Applies the overlay pinned to the images loaded last; with none loaded (a first deploy, or `.data/`
        removed by hand), builds and loads them first, so no pod asks for an image the node does not have."""
        require_tools("kubectl", *(["minikube"] if target.autoscaling and target.cluster == "minikube" else []))
        self.overlay_dir(target)
        if target.context not in self.runner.output(["kubectl", "config", "get-contexts", "--output", "name"]).split():
            raise ClusterError(missing_context(target.cluster))
        loaded = self.root / LOADED_IMAGES
        if not loaded.is_file() or (target.scheduled_drill and f"/{DRILL}:" not in loaded.read_text(encoding="utf-8")):
            print(f"images not loaded yet ({LOADED_IMAGES} lacks them): building and loading them", flush=True)
            self.load(target.cluster, target.images)
        overlay = self.deployable(target)
        self.secrets()
        if target.autoscaling:
            if target.cluster == "minikube":
                self.runner.run(commands.minikube_addon_argv("metrics-server"))
            self.forget_applied_replicas(target.context, overlay)
        self.runner.run(commands.apply_argv(target.context, overlay))
        workloads = self.runner.output(commands.workloads_argv(target.context)).split()
        if not workloads and not self.runner.dry_run:
            raise ClusterError(f"nothing to wait for: no StatefulSet or Deployment in namespace {NAMESPACE}")
        for workload in workloads:
            self.runner.run(commands.rollout_argv(target.context, workload))
        if target.profile == "fragile" and not self.runner.dry_run:
            self.wait_until_listening(target.cluster)
        if target.autoscaling:
            print(f"payment autoscales: kubectl --context {target.context} -n {NAMESPACE} get hpa -w", flush=True)

    def wait_until_listening(self, cluster: Cluster) -> None:
        """Without probes (the fragile profile) a pod is Ready as soon as its container starts, before its app
        listens, so `rollout status` returns early: wait until every Ready pod of the shop answers `GET /ready` 200
        (what a readiness probe would ask) through the API's port-forward."""
        shop = kube.Cluster(payment_cluster(cluster).api, NAMESPACE, SHOP_PODS, context=kube_context(cluster))
        waiting = [(str(pod["metadata"]["name"]), shop.http_port(pod)) for pod in ready_pods(shop.pods(SHOP_PODS))]
        deadline = time.monotonic() + LISTEN_TIMEOUT_SECONDS
        while waiting := [(name, port) for name, port in waiting if not answers_ready(shop, name, port)]:
            if time.monotonic() > deadline:
                names = ", ".join(name for name, _ in waiting)
                raise ClusterError(f"{names} did not answer GET /ready within {LISTEN_TIMEOUT_SECONDS} s")
            time.sleep(1)

    def kind_up(self, target: Target) -> None:
        require_tools("docker", "kind", "kubectl")
        self.overlay_dir(target)
        if CLUSTER_NAME in self.runner.output(["kind", "get", "clusters"]).split():
            print(f"kind cluster {CLUSTER_NAME} exists: reusing it", flush=True)
        elif busy := ports_in_use(KIND_HOST_PORTS):
            names = ", ".join(f"{port} ({KIND_HOST_PORTS[port]})" for port in busy)
            raise ClusterError(f"the kind cluster publishes these ports on 127.0.0.1, which are in use: {names}")
        else:
            self.runner.run(commands.kind_create_argv(self.root / "k8s" / "kind" / "cluster.yaml"))
        self.load("kind", target.images)
        self.deploy(target)
        self.remember("kind", SHOP_URL)
        print(f"\nresilient-shop is up ({target.profile}) on kind: {SHOP_URL}", flush=True)
        if target.monitoring:
            print(f"Grafana: {KIND_GRAFANA_URL}", flush=True)

    def minikube_up(self, target: Target) -> None:
        require_tools("docker", "minikube", "kubectl")
        self.overlay_dir(target)
        self.refuse_a_smaller_minikube()
        if self.runner.succeeds(["minikube", "status", "--profile", CLUSTER_NAME]):
            print(f"minikube profile {CLUSTER_NAME} is running: reusing it", flush=True)
        else:
            self.runner.run(commands.minikube_start_argv())
        self.load("minikube", target.images)
        self.deploy(target)
        ip = self.runner.output(["minikube", "ip", "--profile", CLUSTER_NAME]).strip() or "127.0.0.1"
        self.remember("minikube", f"http://{ip}:{STOREFRONT_NODE_PORT}")
        print(f"\nresilient-shop is up ({target.profile}) on minikube; its URL:", flush=True)
        print("(with the docker driver on macOS or Windows this keeps a tunnel open: Ctrl-C closes it)", flush=True)
        self.runner.run(commands.minikube_service_argv())

    def refuse_a_smaller_minikube(self) -> None:
        """An existing profile keeps the memory and network plugin it was created with (`minikube start` warns and
        goes on): one with less memory than `MINIKUBE`, or without Calico (NetworkPolicies inert), is refused."""
        listed = json.loads(self.runner.output(["minikube", "profile", "list", "--output", "json"]) or "{}")
        for config in (profile["Config"] for profile in listed.get("valid") or [] if profile["Name"] == CLUSTER_NAME):
            memory, cni = config.get("Memory", 0), config.get("KubernetesConfig", {}).get("CNI") or "auto"
            if memory < (want := commands.MINIKUBE)["memory"] or cni != want["cni"]:
                raise ClusterError(
                    f"minikube profile {CLUSTER_NAME} has {memory} MB, CNI {cni}; the shop needs {want['memory']} MB "
                    f"and {want['cni']}: `minikube delete --profile {CLUSTER_NAME}`, then `make minikube-up` again"
                )

    def leak(self, cluster: Cluster, *, mb_per_second: float, max_mb: int | None) -> None:
        """`POST /chaos/leak` to exactly one Ready payment pod (the one the drill would pick), through a port-forward
        of the Kubernetes API, with the token the pod's `CHAOS_TOKEN` variable holds."""
        payment = payment_cluster(cluster)
        pods = payment.pods(payment.selector)
        pod = payment.pick_ready_pod(pods)
        token, name = payment.chaos_token(pod), str(pod["metadata"]["name"])
        if not token:
            raise ClusterError(f"pod {name} has no CHAOS_TOKEN in its environment: chaos is off in this deployment")
        print(f"leaking {mb_per_second} MiB/s in {name}, 1 of {len(ready_pods(pods))} Ready payment pods", flush=True)
        send: Send = not_sent if self.runner.dry_run else payment.transport(name, payment.http_port(pod))
        try:
            sent = asyncio.run(Chaos(send, token, f"pod {name}").leak(mb_per_second, max_mb))
        except ChaosRefused as refused:
            raise ClusterError(str(refused)) from None
        dry_run = " (dry run: not sent)" if self.runner.dry_run else ""
        print(f"{sent} to {name} through the API's port-forward{dry_run}", flush=True)
        print(f"watch it: kubectl --context {kube_context(cluster)} get rs,pods -n {NAMESPACE} -w", flush=True)

    def status(self, cluster: Cluster) -> None:
        require_tools("kubectl")
        self.runner.run(commands.status_argv(kube_context(cluster)))
        url = SHOP_URL if cluster == "kind" else f"the URL `{shlex.join(commands.minikube_service_argv())}` prints"
        print(f"\nshop: {url}", flush=True)

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
        every: list[Cluster] = list(get_args(Cluster))
        clusters = [cluster] if cluster else [name for name in every if shutil.which(name)] or every
        require_tools(*clusters)
        for name in clusters:
            self.runner.run(commands.down_argv(name))
