"""`make run` plays the kubelet from the manifests (`shop_devtools.kubelet`): what it reads from k8s/base is what a
cluster's kubelet gets from every resilient overlay, rendered by the real kustomize."""

import pytest

from shop_devtools.kubelet import Probe, memory_env, pod_specs, shared_config
from shop_devtools.quantities import memory_bytes
from tests.k8s.conftest import Render, Target, overlay_targets
from tests.k8s.manifests import container_env

RESILIENT = [target for target in overlay_targets() if not target.fragile]


@pytest.mark.parametrize("target", RESILIENT, ids=lambda target: target.id)
def test_each_service_gets_the_replicas_budget_and_probes_its_pods_get(render: Render, target: Target) -> None:
    manifests = render(target)
    specs = pod_specs()
    assert set(specs) == {"storefront", "catalog", "users", "payment"}
    for name, spec in specs.items():
        deployment = manifests.shop_deployment(name)
        container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name)
        assert spec.replicas == deployment["spec"]["replicas"], name
        assert spec.memory_limit == memory_bytes(container["resources"]["limits"]["memory"]), name
        for probe, rendered in (
            (spec.liveness, container["livenessProbe"]),
            (spec.readiness, container["readinessProbe"]),
        ):
            assert probe == Probe(
                rendered["httpGet"]["path"],
                rendered["periodSeconds"],
                rendered["timeoutSeconds"],
                rendered["failureThreshold"],
            ), name
        fraction = container_env(container, manifests)["MEMORY_BUDGET_FRACTION"]
        assert memory_env(spec, shared_config()) == {
            "MEMORY_BUDGET_BYTES": str(spec.memory_limit),
            "MEMORY_BUDGET_FRACTION": fraction,
        }, name


def test_payment_runs_three_replicas_and_liveness_gives_up_after_fifteen_seconds() -> None:
    payment = pod_specs()["payment"]
    assert payment.replicas == 3
    assert payment.liveness.period * payment.liveness.failure_threshold == 15
