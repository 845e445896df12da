"""The rendered manifests agree with the code they run: settings, routes, ports, commands, images, selectors,
references, security and the laptop's memory."""

import importlib.util
import subprocess
import sys
import tomllib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from shop_catalog.main import create_app as create_catalog
from shop_catalog.settings import CatalogSettings
from shop_devtools.cluster.shop import image_refs
from shop_devtools.credentials import NAMES
from shop_devtools.topology import SERVICES
from shop_payment.main import create_app as create_payment
from shop_payment.settings import PaymentSettings
from shop_storefront.main import create_app as create_storefront
from shop_storefront.settings import StorefrontSettings
from shop_users.main import create_app as create_users
from shop_users.settings import UsersSettings
from shopkit import ServiceSettings
from tests.contracts import accepted_env_names
from tests.k8s.conftest import ALL, REPO, TARGETS, Render, Target
from tests.k8s.manifests import (
    DATABASE_SERVICES,
    SHOP_SERVICES,
    Manifests,
    Object,
    container_env,
    containers,
    generated,
    is_shop_image,
    matches,
    pod_labels,
    pod_spec,
    total_memory_requests,
)

SETTINGS: dict[str, type[ServiceSettings]] = {
    "storefront": StorefrontSettings,
    "catalog": CatalogSettings,
    "users": UsersSettings,
    "payment": PaymentSettings,
}
APPS: dict[str, Callable[..., FastAPI]] = {
    "storefront": create_storefront,
    "catalog": create_catalog,
    "users": create_users,
    "payment": create_payment,
}
POSTGRES_IMAGE_ENV = {
    # the image's own settings and libpq's connection variables
    "POSTGRES_PASSWORD",
    "PGDATA",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    # read by the scripts the manifests run in that image
    "DATABASE_URL",
    *(f"{service.upper()}_DB_PASSWORD" for service in DATABASE_SERVICES),
}
DRAIN_TIMEOUT_SECONDS = 30  # uvicorn's timeout_graceful_shutdown in shopkit.server.serve
LAPTOP_MEMORY_REQUESTS = 2 * 2**30
PROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
UNREACHABLE_DATABASE = "postgresql://x:y@127.0.0.1:9/none"


def shop_containers(manifests: Manifests, service: str) -> list[Object]:
    return [c for c in containers(manifests.shop_deployment(service)) if is_shop_image(c["image"])]


def app_container(manifests: Manifests, service: str) -> Object:
    (container,) = (c for c in pod_spec(manifests.shop_deployment(service))["containers"] if c["name"] == service)
    found: Object = container
    return found


def env_names(container: Object, manifests: Manifests) -> set[str]:
    return set(container_env(container, manifests))


def own_workloads(manifests: Manifests) -> list[Object]:
    return [w for w in manifests.workloads() if w["metadata"]["name"] in {*SHOP_SERVICES, "postgres"}]


@pytest.mark.parametrize("target", ALL)
def test_every_env_var_is_a_setting_the_service_reads(render: Render, target: Target) -> None:
    manifests = render(target)
    for service in SHOP_SERVICES:
        accepted = accepted_env_names(SETTINGS[service])
        for container in shop_containers(manifests, service):
            unknown = env_names(container, manifests) - accepted
            assert not unknown, f"{service}/{container['name']} sets {sorted(unknown)}, which {service} never reads"
    for workload in manifests.workloads():
        for container in containers(workload):
            if container["image"].startswith("postgres:"):
                unknown = env_names(container, manifests) - POSTGRES_IMAGE_ENV
                assert not unknown, f"{workload['metadata']['name']}/{container['name']}: {sorted(unknown)}"


@pytest.mark.parametrize("target", ALL)
def test_environment_makes_valid_production_settings(
    render: Render, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's settings, built from exactly the environment its pod gets, are valid in production: no
    placeholder secret, the signing key parses, chaos has its token."""
    manifests = render(target)
    for service in SHOP_SERVICES:
        settings_class = SETTINGS[service]
        for name in accepted_env_names(settings_class):
            monkeypatch.delenv(name, raising=False)
        for container in shop_containers(manifests, service):
            with monkeypatch.context() as env:
                for name, value in container_env(container, manifests).items():
                    env.setenv(name, value)
                settings = settings_class()
            assert settings.is_production
            assert settings.json_logs
            assert settings.host == "0.0.0.0"
            assert settings.shutdown_delay_seconds == 5
            assert settings.chaos_enabled is target.demo
            assert settings.chaos_token is not None
            assert len(settings.chaos_token.get_secret_value()) >= 32
            if service in DATABASE_SERVICES:
                assert settings.database_url is not None


@pytest.mark.parametrize("target", ALL)
def test_each_service_gets_exactly_the_credentials_it_reads_from_the_credentials_secret(
    render: Render, target: Target
) -> None:
    """Key by key from the `credentials` Secret (never the whole Secret, never a literal), to the service's own
    container only: its migrations call nobody. Catalog all three, payment its own, storefront its own and the
    operator's, users none."""
    manifests = render(target)
    secret = generated(manifests.of_kind("Secret"), "credentials")
    assert set(secret["data"]) == set(NAMES)
    expected = {"catalog": set(NAMES), "payment": {"PAYMENT_CREDENTIAL"}, "users": set()}
    expected["storefront"] = {"STOREFRONT_CREDENTIAL", "OPERATOR_CREDENTIAL"}
    for service in SHOP_SERVICES:
        read = {name for name in accepted_env_names(SETTINGS[service]) if name.endswith("_CREDENTIAL")}
        assert read == expected[service], f"{service}'s settings read {sorted(read)}"
        for workload in manifests.workloads():
            for container in containers(workload):
                own = workload["metadata"]["name"] == service and container["name"] == service
                given = {
                    variable["name"]: variable.get("valueFrom", {}).get("secretKeyRef")
                    for variable in container.get("env", [])
                    if variable["name"] in NAMES
                }
                if own:
                    assert given == {name: {"name": secret["metadata"]["name"], "key": name} for name in read}, service
                elif workload["metadata"]["name"] == service:
                    assert given == {}, f"{service}/{container['name']} needs no credential"
                sources = [source.get("secretRef", {}).get("name") for source in container.get("envFrom", [])]
                assert secret["metadata"]["name"] not in sources, "never the whole Secret"


def probe_paths(container: Object) -> set[str]:
    return {
        container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        if probe in container and "httpGet" in container[probe]
    }


@pytest.mark.parametrize("service", SHOP_SERVICES)
async def test_probe_and_metrics_paths_are_routes_of_the_service(render: Render, service: str) -> None:
    """Built in-process without its lifespan (nothing connects): each path must be routed, not 404/405."""
    manifests = render(TARGETS[0])
    deployment = manifests.shop_deployment(service)
    paths = probe_paths(app_container(manifests, service))
    assert paths == {"/healthz", "/ready"}
    paths.add(deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"])
    kwargs: dict[str, Any] = {"database_url": UNREACHABLE_DATABASE} if service in DATABASE_SERVICES else {}
    app = APPS[service](SETTINGS[service](**kwargs))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
        for path in sorted(paths):
            response = await client.get(path)
            assert response.status_code not in {404, 405}, f"{service} has no route GET {path}"


@pytest.mark.parametrize("target", ALL)
def test_ports_match_the_port_each_service_listens_on(render: Render, target: Target) -> None:
    manifests = render(target)
    for service in SHOP_SERVICES:
        default_port = SETTINGS[service].model_fields["port"].default
        container = app_container(manifests, service)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {"http": default_port}
        assert container_env(container, manifests).get("PORT", str(default_port)) == str(default_port)
        annotations = manifests.shop_deployment(service)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(default_port)
        assert annotations["prometheus.io/path"] == "/metrics"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in {"http", default_port}
        svc = manifests.get("Service", service)
        assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(default_port, "http")]


@pytest.mark.parametrize("target", ALL)
def test_commands_are_the_services_entry_points(render: Render, target: Target) -> None:
    manifests = render(target)
    for service in SHOP_SERVICES:
        package = "storefront" if service == "storefront" else service
        scripts = tomllib.loads((REPO / "services" / package / "pyproject.toml").read_text())["project"]["scripts"]
        assert f"shop-{service}" in scripts
        assert app_container(manifests, service)["command"] == [f"shop-{service}"]
        init = pod_spec(manifests.shop_deployment(service)).get("initContainers", [])
        migrations = [c for c in init if is_shop_image(c["image"])]
        if service in DATABASE_SERVICES:
            assert [c["command"] for c in migrations] == [[f"shop-{service}", "migrate"]]
            assert migrations[0]["image"] == app_container(manifests, service)["image"]
            assert migrations[0]["securityContext"] == app_container(manifests, service)["securityContext"]
        else:
            assert not migrations


@pytest.mark.parametrize("target", ALL)
def test_service_urls_and_database_urls_point_at_what_is_rendered(render: Render, target: Target) -> None:
    manifests = render(target)
    env = {service: container_env(app_container(manifests, service), manifests) for service in SHOP_SERVICES}
    upstreams = {
        (service.name, service.upstream_setting(upstream)): upstream
        for service in SERVICES
        for upstream in service.upstreams
    }
    for (service, name), upstream in upstreams.items():
        url = urlsplit(env[service][name])
        assert url.hostname in {upstream, f"{upstream}.shop", f"{upstream}.shop.svc"}, name
        assert url.port in {p["port"] for p in manifests.get("Service", upstream)["spec"]["ports"]}, name
    assert env["payment"]["PAYMENT_JWT_ISSUER"] == env["users"]["USERS_JWT_ISSUER"]
    assert env["payment"]["PAYMENT_JWT_AUDIENCE"] == env["users"]["USERS_JWT_AUDIENCE"]
    (provision,) = (
        c for c in pod_spec(manifests.get("StatefulSet", "postgres"))["containers"] if c["name"] == "provision"
    )
    postgres = container_env(provision, manifests)
    headless = manifests.get("Service", "postgres")
    assert headless["spec"]["clusterIP"] == "None"
    assert manifests.get("StatefulSet", "postgres")["spec"]["serviceName"] == "postgres"
    for service in DATABASE_SERVICES:
        url = urlsplit(env[service]["DATABASE_URL"])
        assert url.scheme == "postgresql"
        assert (url.hostname, url.port, url.path, url.username) == ("postgres.shop.svc", 5432, f"/{service}", service)
        assert url.password == postgres[f"{service.upper()}_DB_PASSWORD"]


@pytest.mark.parametrize("target", ALL)
def test_selectors_match_pod_labels(render: Render, target: Target) -> None:
    manifests = render(target)
    workloads = manifests.workloads()
    for workload in workloads:
        selector = workload["spec"]["selector"]
        assert matches(selector, pod_labels(workload))
        others = [w["metadata"]["name"] for w in workloads if w is not workload and matches(selector, pod_labels(w))]
        assert not others, f"{workload['metadata']['name']}'s selector also selects {others}"
    for kind, field in (("Service", "selector"), ("PodDisruptionBudget", "selector")):
        for obj in manifests.of_kind(kind):
            raw = obj["spec"].get(field)
            if raw is None:
                continue
            selector = raw if kind == "PodDisruptionBudget" else {"matchLabels": raw}
            selected = [w["metadata"]["name"] for w in workloads if matches(selector, pod_labels(w))]
            assert selected == [obj["metadata"]["name"]], f"{kind} {obj['metadata']['name']} selects {selected}"
    for service in manifests.of_kind("Service"):
        (workload,) = (w for w in workloads if w["metadata"]["name"] == service["metadata"]["name"])
        named = {p.get("name") for c in containers(workload, init=False) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named | {
                p["containerPort"] for c in containers(workload) for p in c.get("ports", [])
            }
    assert {pdb["metadata"]["name"] for pdb in manifests.of_kind("PodDisruptionBudget")} >= set(SHOP_SERVICES)


@pytest.mark.parametrize("target", ALL)
def test_labels_are_consistent(render: Render, target: Target) -> None:
    manifests = render(target)
    for workload in own_workloads(manifests):
        name = workload["metadata"]["name"]
        labels = pod_labels(workload)
        assert labels["app.kubernetes.io/name"] == name
        assert labels["app.kubernetes.io/part-of"] == "resilient-shop"
        assert labels["app.kubernetes.io/component"]
        assert labels["app.kubernetes.io/version"]
        if name in SHOP_SERVICES:
            assert labels["app.kubernetes.io/version"] == PROJECT_VERSION
        assert {k: v for k, v in workload["metadata"]["labels"].items() if k in labels} == labels
        for kind in ("Service", "ServiceAccount"):
            assert manifests.get(kind, name)["metadata"]["labels"] == labels


def referenced(spec: Object) -> set[tuple[str, str, str | None]]:
    """(kind, name, key) of every ConfigMap and Secret a pod spec refers to."""
    refs: set[tuple[str, str, str | None]] = set()
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        for source in container.get("envFrom", []):
            if ref := source.get("configMapRef"):
                refs.add(("ConfigMap", ref["name"], None))
            if ref := source.get("secretRef"):
                refs.add(("Secret", ref["name"], None))
        for variable in container.get("env", []):
            value_from = variable.get("valueFrom", {})
            if ref := value_from.get("configMapKeyRef"):
                refs.add(("ConfigMap", ref["name"], ref["key"]))
            if ref := value_from.get("secretKeyRef"):
                refs.add(("Secret", ref["name"], ref["key"]))
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            refs.add(("ConfigMap", volume["configMap"]["name"], None))
        if "secret" in volume:
            refs.add(("Secret", volume["secret"]["secretName"], None))
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                refs.add(("ConfigMap", source["configMap"]["name"], None))
            if "secret" in source:
                refs.add(("Secret", source["secret"]["name"], None))
    return refs


@pytest.mark.parametrize("target", ALL)
def test_every_referenced_secret_and_config_map_is_rendered(render: Render, target: Target) -> None:
    manifests = render(target)
    for workload in manifests.workloads():
        spec = pod_spec(workload)
        for kind, name, key in referenced(spec):
            obj = manifests.get(kind, name)
            if key is not None:
                assert key in {**obj.get("data", {}), **obj.get("stringData", {})}, f"{kind} {name} has no {key}"
        if account := spec.get("serviceAccountName"):
            assert account in manifests.names("ServiceAccount")


def expected_images() -> set[str]:
    """What `make images` builds: `python -m shop_devtools.images --list` once that module exists; until then the
    documented names (`resilient-shop/<service>:<project version>`)."""
    if importlib.util.find_spec("shop_devtools.images") is None:
        return {f"resilient-shop/{service}:{PROJECT_VERSION}" for service in SHOP_SERVICES}
    listed = subprocess.run(
        [sys.executable, "-m", "shop_devtools.images", "--list"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(image_refs(listed, PROJECT_VERSION))


@pytest.mark.parametrize("target", ALL)
def test_images_are_what_make_images_builds_and_never_latest(render: Render, target: Target) -> None:
    manifests = render(target)
    images = {c["image"] for w in manifests.workloads() for c in containers(w)}
    assert {image for image in images if is_shop_image(image)} == expected_images()
    for image in images:
        repository, _, tag = image.rpartition(":")
        assert repository, f"{image} has no tag"
        assert "/" not in tag, f"{image} has no tag"
        assert tag != "latest", f"{image} is tagged latest"
    for workload in manifests.workloads():
        for container in containers(workload):
            if is_shop_image(container["image"]):  # loaded into the cluster, never pulled
                assert container["imagePullPolicy"] in {"IfNotPresent", "Never"}


def effective(container: Object, spec: Object, field: str) -> Any:
    return container.get("securityContext", {}).get(field, spec.get("securityContext", {}).get(field))


@pytest.mark.parametrize("target", ALL)
def test_pods_meet_the_restricted_pod_security_standard(render: Render, target: Target) -> None:
    manifests = render(target)
    for workload in own_workloads(manifests):
        name, spec = workload["metadata"]["name"], pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        # The recovery view's component mounts the storefront's token, for the pods and Events /recovery reads
        # (tests/k8s/test_recovery_view.py); its ServiceAccount keeps false.
        reads_the_api = name == "storefront" and "recovery-view" in manifests.names("Role")
        assert spec["automountServiceAccountToken"] is reads_the_api
        assert manifests.get("ServiceAccount", name)["automountServiceAccountToken"] is False
        for host_namespace in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host_namespace)
        if name in SHOP_SERVICES:
            assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (10001, 10001)
            assert spec.get("enableServiceLinks") is False
        else:
            assert spec["securityContext"]["runAsUser"] == spec["securityContext"]["fsGroup"] == 999
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in containers(workload):
            context = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert not context["capabilities"].get("add"), where
            assert effective(container, spec, "runAsNonRoot") is True, where
            assert effective(container, spec, "runAsUser") not in {None, 0}, where
            assert effective(container, spec, "seccompProfile") == {"type": "RuntimeDefault"}, where
            assert not context.get("privileged"), where
            if is_shop_image(container["image"]):
                mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
                assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp must be an emptyDir"


@pytest.mark.parametrize("target", ALL)
def test_resources_and_the_laptop_memory_budget(render: Render, target: Target) -> None:
    manifests = render(target)
    for workload in own_workloads(manifests):
        for container in containers(workload):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{workload['metadata']['name']}/{container['name']}"
    total = total_memory_requests(manifests)
    assert total <= LAPTOP_MEMORY_REQUESTS, f"memory requests {total / 2**20:.0f} MiB exceed 2 GiB"
