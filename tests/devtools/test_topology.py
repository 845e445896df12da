"""`shop_devtools.topology` against the real things: the services' packages and settings, the rendered manifests and
the migrations on disk. The tools, the bench and the tests take the services from the topology rather than
restating them, so these check it against what it describes."""

import importlib
import importlib.resources
import importlib.util
import shutil
import tomllib
from urllib.parse import urlsplit

import pytest

from shop_devtools.cluster.generated_secrets import generate_secrets
from shop_devtools.credentials import NAMES
from shop_devtools.topology import BY_NAME, CALLEES_FIRST, DATABASES, LIBRARIES, SERVICES, Service
from tests.contracts import ServiceContract
from tests.k8s.conftest import K8S, REPO, kustomize
from tests.k8s.manifests import Manifests

KIND_OVERLAY = "overlays/kind"


@pytest.fixture(scope="module")
def kind_manifests(tmp_path_factory: pytest.TempPathFactory) -> Manifests:
    """The kind overlay rendered from a copy of k8s/ with freshly generated secrets, as tests/k8s renders it."""
    k8s = tmp_path_factory.mktemp("repo") / "k8s"
    shutil.copytree(K8S, k8s, ignore=shutil.ignore_patterns("generated"))
    generate_secrets(k8s / "base" / "generated")
    return Manifests(kustomize(k8s / KIND_OVERLAY))


def test_every_service_on_disk_is_in_the_topology_once() -> None:
    on_disk = {path.name for path in (REPO / "services").iterdir() if (path / "pyproject.toml").is_file()}
    assert sorted([*BY_NAME, *LIBRARIES]) == sorted(on_disk)
    assert len(BY_NAME) == len(SERVICES)
    assert len({service.port for service in SERVICES}) == len(SERVICES)


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_library_is_imported_never_run(library: str) -> None:
    with (REPO / "services" / library / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    assert "scripts" not in project
    assert "gui-scripts" not in project
    assert "entry-points" not in project
    assert not list((REPO / "services" / library / "src").glob("*/__main__.py"))
    assert not list((REPO / "services" / library / "src").glob("*/main.py"))


def test_each_one_calls_only_services_started_before_it_in_callees_first() -> None:
    assert set(CALLEES_FIRST) == set(SERVICES)
    for index, service in enumerate(CALLEES_FIRST):
        assert set(service.upstreams) <= {earlier.name for earlier in CALLEES_FIRST[:index]}, service.name


@pytest.mark.parametrize("service", SERVICES, ids=lambda service: service.name)
def test_the_package_serves_on_the_port(service: Service) -> None:
    importlib.import_module(service.module)
    assert importlib.util.find_spec(f"{service.module}.__main__") is not None, f"python -m {service.module}"
    assert callable(importlib.import_module(f"{service.module}.main").create_app)
    assert ServiceContract(service.name).default_port == service.port


@pytest.mark.parametrize("service", SERVICES, ids=lambda service: service.name)
def test_the_upstream_settings_are_the_services_settings(service: Service) -> None:
    """Each upstream's URL is a setting of the service (under its env prefix), its default on that upstream's port,
    and the service has no other URL setting than these and its database's."""
    settings = ServiceContract(service.name).settings_class
    prefix = f"{service.name.upper()}_"
    assert str(settings.model_config.get("env_prefix", "")).upper() == prefix
    urls = {name for name in ServiceContract(service.name).env_names if name.endswith("_URL")} - {"DATABASE_URL"}
    assert urls == {service.upstream_setting(upstream) for upstream in service.upstreams}
    for upstream in service.upstreams:
        field = settings.model_fields[service.upstream_setting(upstream).removeprefix(prefix).lower()]
        assert urlsplit(str(field.default)).port == BY_NAME[upstream].port, upstream


@pytest.mark.parametrize("service", SERVICES, ids=lambda service: service.name)
def test_the_credentials_are_the_ones_the_settings_read(service: Service) -> None:
    """What `make run`, compose, the container proof and the Deployments give each service: no more, no less."""
    read = {name for name in ServiceContract(service.name).env_names if name.endswith("_CREDENTIAL")}
    assert read <= set(NAMES)
    assert sorted(service.credentials) == sorted(read)
    assert len(set(service.credentials)) == len(service.credentials)


def test_the_databases_are_the_migrations_on_disk() -> None:
    on_disk = {path.parents[1].name.removeprefix("shop_") for path in REPO.glob("services/*/src/*/migrations/env.py")}
    assert {service.name for service in DATABASES} == on_disk
    for service in SERVICES:
        assert ServiceContract(service.name).has_database == service.has_database, service.name
    for service in DATABASES:
        package, _, directory = service.migrations.partition(":")
        assert importlib.resources.files(package).joinpath(directory, "env.py").is_file(), service.migrations


def test_the_manifests_run_each_service_on_its_port(kind_manifests: Manifests) -> None:
    for service in SERVICES:
        deployment = kind_manifests.shop_deployment(service.name)
        (container,) = (c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == service.name)
        assert [(port["name"], port["containerPort"]) for port in container["ports"]] == [("http", service.port)]
        ports = kind_manifests.get("Service", service.name)["spec"]["ports"]
        assert [(port["port"], port["targetPort"]) for port in ports] == [(service.port, "http")], service.name
