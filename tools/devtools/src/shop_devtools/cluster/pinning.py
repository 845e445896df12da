"""What gets applied: the image references `python -m shop_devtools.images --list` gives, each retagged by its
content, the kustomization in .data/deploy/ that pins the overlay to them and adds the components, and a
Deployment's last-applied configuration without its replica count (left to the HorizontalPodAutoscaler)."""

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shop_devtools.cluster.errors import ClusterError
from shop_devtools.cluster.target import IMAGE_REPOSITORY

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


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
