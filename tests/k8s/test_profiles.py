"""Resilient (the default) against fragile (the article's "before"), checked on the rendered objects: how fast a
sick pod is noticed and routed around, replicas, retries, drain, rollout, disruption budgets, chaos."""

import pytest

from shop_devtools.chaos import OOM_LEAK_MIB_PER_SECOND
from shop_devtools.cluster import cli
from shop_devtools.quantities import memory_bytes
from shop_load.core import drill_args
from shop_users.security import HASH_CONCURRENCY
from tests.k8s.conftest import ALL, DEMO, FRAGILE, RESILIENT, Render, Target
from tests.k8s.manifests import SHOP_SERVICES, Manifests, Object, container_env, pod_spec, probe_window

LIVENESS_BUDGET_SECONDS = 20  # the most the liveness window (`probe_window`) may be: a leak is acted on in time
READINESS_BUDGET_SECONDS = 6  # and a sick pod leaves the Service within 6 s at most
DRAIN_TIMEOUT_SECONDS = 30  # uvicorn's timeout_graceful_shutdown in shopkit.server.serve
LOADED_RESIDENT_MIB = 130
"""A service's resident memory at its busiest: `make bench` saw payment 110-118 MiB, catalog 98-101 MiB and storefront
106-121 MiB from a cold start through bursts of 128 and 512 concurrent checkouts. A loaded pod must stay under its
budget (busy is not unready), with room to spare."""
ARGON2_MIB = 64  # argon2's memory cost per hash (users)
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def app_container(manifests: Manifests, service: str) -> Object:
    (container,) = (c for c in pod_spec(manifests.shop_deployment(service))["containers"] if c["name"] == service)
    found: Object = container
    return found


@pytest.mark.parametrize("target", RESILIENT)
def test_resilient_probes_notice_a_sick_pod_in_time(render: Render, target: Target) -> None:
    manifests = render(target)
    for service in SHOP_SERVICES:
        container = app_container(manifests, service)
        startup, liveness, readiness = (container[probe] for probe in PROBES)
        assert startup["httpGet"]["path"] == liveness["httpGet"]["path"] == "/healthz"
        assert readiness["httpGet"]["path"] == "/ready"
        assert startup["periodSeconds"] <= 2
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 30, "a generous start-up allowance"
        assert probe_window(liveness) <= LIVENESS_BUDGET_SECONDS, (
            f"{service}: liveness after {probe_window(liveness)} s"
        )
        assert probe_window(readiness) <= READINESS_BUDGET_SECONDS, (
            f"{service}: readiness after {probe_window(readiness)}"
        )
        for probe in (startup, liveness, readiness):
            assert probe["timeoutSeconds"] <= probe["periodSeconds"]
        assert readiness.get("successThreshold", 1) == 1


@pytest.mark.parametrize("target", RESILIENT)
def test_resilient_replicas_and_retries(render: Render, target: Target) -> None:
    manifests = render(target)
    replicas = {service: manifests.shop_deployment(service)["spec"]["replicas"] for service in SHOP_SERVICES}
    assert replicas == {"storefront": 2, "catalog": 2, "users": 2, "payment": 3}
    assert int(manifests.config("storefront-config")["STOREFRONT_RETRY_ATTEMPTS"]) >= 2


@pytest.mark.parametrize("target", FRAGILE)
def test_fragile_has_one_payment_replica_no_probes_and_no_retries(render: Render, target: Target) -> None:
    manifests = render(target)
    assert manifests.shop_deployment("payment")["spec"]["replicas"] == 1
    for service in SHOP_SERVICES:
        for container in pod_spec(manifests.shop_deployment(service))["containers"]:
            assert not set(PROBES) & set(container), f"{service}/{container['name']} still has a probe"
    assert manifests.config("storefront-config")["STOREFRONT_RETRY_ATTEMPTS"] == "1"
    postgres = pod_spec(manifests.get("StatefulSet", "postgres"))["containers"][0]
    assert set(PROBES) <= set(postgres), "the database keeps its probes in both profiles"


@pytest.mark.parametrize("target", RESILIENT)
def test_memory_limits_let_liveness_catch_the_leak_before_the_oom_killer(render: Render, target: Target) -> None:
    """`make leak`'s rate, for as long as liveness takes to fail plus the drain delay, fits between payment's memory
    budget (MEMORY_BUDGET_FRACTION of its limit, where /healthz turns 503) and its limit (the OOM kill); the budget
    leaves room above a service at its busiest (and, for users, above its concurrent argon2 hashes)."""
    manifests = render(target)
    leak_rate_mib = cli.parser().parse_args(["leak"]).mb_per_second
    for service in SHOP_SERVICES:
        container = app_container(manifests, service)
        env = container_env(container, manifests)
        limit = memory_bytes(container["resources"]["limits"]["memory"]) / 2**20
        budget = float(env["MEMORY_BUDGET_FRACTION"]) * limit
        needed = LOADED_RESIDENT_MIB + (HASH_CONCURRENCY * ARGON2_MIB if service == "users" else 0)
        assert budget >= needed, f"{service}: budget {budget:.0f} MiB under {needed} MiB"
        if service == "payment":
            seconds_to_restart = probe_window(container["livenessProbe"]) + float(env["SHUTDOWN_DELAY_SECONDS"])
            assert limit - budget >= leak_rate_mib * seconds_to_restart


LEAK_MARGIN = 0.2
"""Room left below the limit when liveness has acted, for what a busy pod allocates besides the leak."""


@pytest.mark.parametrize("target", RESILIENT)
def test_the_default_leaks_end_in_a_liveness_restart_and_the_fast_one_in_an_oom_kill(
    render: Render, target: Target
) -> None:
    """From the rendered payment pod: the budget is crossed, then the liveness window passes (`probe_window`: period
    * failureThreshold + timeout), then the kubelet's SIGTERM starts the drain (SHUTDOWN_DELAY_SECONDS) while the
    leak goes on. `make leak`'s and the drill's defaults fit below the limit with a margin in that time;
    the fast option does not (it is there to show OOMKilled)."""
    container = app_container(render(target), "payment")
    env = container_env(container, render(target))
    limit = memory_bytes(container["resources"]["limits"]["memory"]) / 2**20
    room = limit * (1 - float(env["MEMORY_BUDGET_FRACTION"]))
    liveness = container["livenessProbe"]
    seconds = probe_window(liveness) + float(env["SHUTDOWN_DELAY_SECONDS"])
    make_leak = cli.parser().parse_args(["leak"]).mb_per_second
    the_drill = drill_args.leak_rate(drill_args.parse_args([]), "kubernetes")
    for rate in (make_leak, the_drill):
        grown = rate * seconds
        assert grown <= room * (1 - LEAK_MARGIN), f"{rate} MiB/s grows {grown:.0f} MiB of {room:.0f} before the restart"
    assert OOM_LEAK_MIB_PER_SECOND * probe_window(liveness) > room, "the fast leak outruns liveness"
    assert drill_args.leak_rate(drill_args.parse_args([]), "local") == drill_args.LOCAL_LEAK_MB_PER_SECOND


@pytest.mark.parametrize("target", ALL)
def test_rollout_drain_and_disruption_budgets(render: Render, target: Target) -> None:
    manifests = render(target)
    for service in SHOP_SERVICES:
        deployment = manifests.shop_deployment(service)
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }
        delay = float(container_env(app_container(manifests, service), manifests)["SHUTDOWN_DELAY_SECONDS"])
        assert delay == 5
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= delay + DRAIN_TIMEOUT_SECONDS
        budget = manifests.get("PodDisruptionBudget", service)["spec"]
        replicas = deployment["spec"]["replicas"]
        # at least one pod stays through a voluntary disruption, yet a drain is never blocked for good
        assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 1
        if "minAvailable" in budget:
            assert replicas > budget["minAvailable"], f"{service}'s budget would block every drain"


@pytest.mark.parametrize("target", ALL)
def test_chaos_is_enabled_only_in_the_cluster_overlays(render: Render, target: Target) -> None:
    manifests = render(target)
    assert manifests.config("shop-config")["CHAOS_ENABLED"] == ("true" if target.demo else "false")


@pytest.mark.parametrize("target", DEMO)
def test_storefront_is_published_on_node_port_30080(render: Render, target: Target) -> None:
    service = render(target).get("Service", "storefront")["spec"]
    assert service["type"] == "NodePort"
    assert [(port["port"], port["nodePort"]) for port in service["ports"]] == [(8080, 30080)]
