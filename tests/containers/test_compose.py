"""docker-compose.yml, checked without Docker: validated against the Compose Specification's JSON schema, then bound
to the code by the same contracts as the Kubernetes manifests (commands, ports, environment names, probe routes,
images), plus the stack's own rules: PostgreSQL with a volume and a health check, one-shot provisioning
and migrations the services wait for, health checks, memory limits, restart policies, monitoring under a profile.

The schema is the one check-jsonschema (a dev dependency) vendors from compose-spec/compose-spec
(`check_jsonschema/builtin_schemas/vendor/compose-spec.json`); it is validated here with jsonschema, and once more
through check-jsonschema's own command line on the file as written (YAML anchors and merge keys included).
"""

import copy
import importlib.resources
import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import validators  # type: ignore[import-untyped]

from shop_devtools import images, workspace
from shop_devtools.credentials import NAMES, new_credentials
from shop_devtools.topology import BY_NAME
from tests.containers.dockerfile import ROOT, Dockerfile
from tests.contracts import SERVICES, ServiceContract, service_contracts

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_FILE = ".data/compose.env"
"""Written by `make compose-up`: USERS_JWT_PRIVATE_KEY=<PEM with literal \\n>, read by the users containers only."""
CREDENTIALS_FILE = ".data/compose/{service}.env"
"""Written by `make compose-up` from .data/credentials.env: the credentials the service reads, and only those."""
ONE_SHOT = "service_completed_successfully"
PROBES = {"/ready", "/healthz"}

_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|(\w+))")


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Compose's variable interpolation (`$$`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`)."""
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        escaped, name, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        current = environ.get(name)
        unset = current is None or (current == "" and operator is not None and operator.startswith(":"))
        if operator in {":-", "-"} and unset:
            return str(interpolate(argument, environ))
        if operator in {":?", "?"} and unset:
            raise KeyError(f"{name}: {argument}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


RAW: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
COMPOSE: dict[str, Any] = interpolate(RAW, {})
STACK: dict[str, dict[str, Any]] = COMPOSE["services"]


def _image_service(definition: Mapping[str, Any]) -> str | None:
    """The shop service whose image this compose service runs (`resilient-shop/payment:0.1.0` → payment)."""
    image = str(definition.get("image", ""))
    match = re.fullmatch(r"resilient-shop/(\w+):(.+)", image)
    return match.group(1) if match else None


def shop_containers() -> Iterator[tuple[str, dict[str, Any], ServiceContract]]:
    for name, definition in STACK.items():
        if service := _image_service(definition):
            yield name, definition, ServiceContract(service)


def long_running() -> list[tuple[str, dict[str, Any], ServiceContract]]:
    return [item for item in shop_containers() if item[1]["command"][-1:] != ["migrate"]]


def environment(definition: Mapping[str, Any]) -> dict[str, str]:
    env = definition.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def memory_bytes(quantity: str | int) -> int:
    """Compose's byte values: `256m`, `1g`, `512mb`, a bare number of bytes."""
    match = re.fullmatch(r"(\d+)([kmg]?)b?", str(quantity).lower())
    assert match, f"not a memory size: {quantity}"
    exponent = {"": 0, "k": 1, "m": 2, "g": 3}[match.group(2)]
    return int(match.group(1)) * int(1024**exponent)


def depends_on(definition: Mapping[str, Any]) -> dict[str, str]:
    """Service → condition; the short (list) form means service_started."""
    raw = definition.get("depends_on", {})
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def one_line_private_key() -> str:
    """USERS_JWT_PRIVATE_KEY as `make compose-up` writes it in .data/compose.env: one line, newlines as \\n."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode("ascii").strip().replace("\n", "\\n")


# --- the Compose Specification ---------------------------------------------------------------------------------


def compose_validator() -> Any:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def schema_errors(document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in compose_validator().iter_errors(document)
    ]


def test_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(RAW) == []
    assert schema_errors(COMPOSE) == [], "and still after interpolation"


def test_the_validator_catches_mistakes() -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["payment"]["deploy"]["replicas"] = "two"
    broken["services"]["payment"]["restart_policy"] = "always"
    broken["services"]["catalog"]["depends_on"]["catalog-migrate"]["condition"] = "service_finished"
    errors = schema_errors(broken)
    assert len(errors) == 3, errors


def test_check_jsonschema_accepts_the_file_as_written() -> None:
    tool = shutil.which("check-jsonschema")
    assert tool, "check-jsonschema is a dev dependency: run `uv sync`"
    result = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_interpolation_has_defaults_for_everything() -> None:
    """`docker compose` works with an empty environment: every variable has a default (none is `${X:?...}`)."""
    assert interpolate(RAW, {}) == COMPOSE
    assert "$" not in json.dumps(COMPOSE).replace("$$", "")
    assert interpolate("${CHAOS_TOKEN:-demo}/${A-}/$$x", {"CHAOS_TOKEN": "t"}) == "t//$x"


# --- images and commands ---------------------------------------------------------------------------------------


def test_images_are_the_ones_make_images_builds() -> None:
    version = workspace.project_version(ROOT)
    built = {definition["image"] for _, definition, _ in shop_containers()}
    assert built == {images.image_name(service, version) for service in images.SERVICES}
    dockerfile = Dockerfile.read()
    declared = set(dockerfile.global_args) | {
        a.arguments.split("=")[0] for s in dockerfile.stages for a in s.all("ARG")
    }
    for name, definition, contract in shop_containers():
        build = definition["build"]
        assert (build["context"], build.get("dockerfile", "Dockerfile")) == (".", "Dockerfile"), name
        assert build["target"] == contract.name, name
        assert set(build.get("args", {})) <= declared, name
        assert build["args"]["BASE_IMAGE"] == images.DEFAULT_BASE_IMAGE
        assert build["args"]["VERSION"] == version
    for name, definition in STACK.items():
        image = str(definition["image"])
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image}"


def test_every_command_is_the_services_console_script() -> None:
    seen = set()
    for name, definition, contract in shop_containers():
        assert definition["command"] in contract.commands, name
        assert "entrypoint" not in definition, name
        seen.add(contract.name)
    assert seen == set(SERVICES)


def test_every_database_is_migrated_by_a_one_shot_service_the_service_waits_for() -> None:
    migrations = {
        contract.name: name
        for name, definition, contract in shop_containers()
        if definition["command"][-1] == "migrate"
    }
    assert set(migrations) == {name for name, contract in service_contracts().items() if contract.has_database}
    for name, definition, contract in long_running():
        if contract.has_database:
            job = migrations[contract.name]
            assert depends_on(definition)[job] == ONE_SHOT, name
            assert environment(STACK[job])["DATABASE_URL"] == environment(definition)["DATABASE_URL"]
            assert STACK[job]["restart"] == "no", job
            assert not {"healthcheck", "ports"} & set(STACK[job]), job


# --- environment -----------------------------------------------------------------------------------------------


def test_every_variable_set_is_a_setting_the_service_reads() -> None:
    for name, definition, contract in shop_containers():
        unknown = set(environment(definition)) - contract.env_names
        assert not unknown, f"{name} sets {sorted(unknown)}, which {contract.settings_class.__name__} never reads"


def test_only_users_gets_the_signing_key_and_each_service_its_own_credentials() -> None:
    """The users key to users (and its migrations); to each long-running service the file of exactly the credentials
    it reads (`compose.credential_files` writes them), none to a migration, which calls nobody."""
    assert "USERS_JWT_PRIVATE_KEY" in ServiceContract("users").env_names
    for name, definition, contract in shop_containers():
        expected = [{"path": ENV_FILE, "required": False}] if contract.name == "users" else []
        read = {env for env in contract.env_names if env in NAMES}
        assert sorted(read) == sorted(BY_NAME[contract.name].credentials), contract.name
        if read and definition["command"][-1] != "migrate":
            expected.append({"path": CREDENTIALS_FILE.format(service=contract.name), "required": False})
        assert definition.get("env_file", []) == expected, name
        assert not set(environment(definition)) & set(NAMES), f"{name}: credentials come from the files only"
    for name, definition in STACK.items():
        if _image_service(definition) is None:
            assert "env_file" not in definition, name


@pytest.fixture
def isolated_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable a service reads leaks in from the test process."""
    for contract in service_contracts().values():
        for name in contract.env_names:
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.mark.parametrize("compose_service", [name for name, _, _ in shop_containers()])
def test_each_container_starts_with_valid_production_settings(
    compose_service: str, isolated_environ: pytest.MonkeyPatch
) -> None:
    """The image's ENV, then the env file `make compose-up` writes, then `environment:`, as Docker layers them:
    the service's settings class must accept the result (placeholder secrets, URLs and ranges included)."""
    definition = STACK[compose_service]
    contract = ServiceContract(str(_image_service(definition)))
    image_env = Dockerfile.read().env(contract.name)
    env = {key: value for key, value in image_env.items() if key in contract.env_names}
    credentials = new_credentials()
    for env_file in definition.get("env_file", []):
        if env_file["path"] == ENV_FILE:
            env["USERS_JWT_PRIVATE_KEY"] = one_line_private_key()
        else:
            env |= {name: credentials[name] for name in BY_NAME[contract.name].credentials}
    env |= environment(definition)
    for key, value in env.items():
        isolated_environ.setenv(key, value)
    settings = contract.settings_class()
    assert settings.environment == "production"
    assert settings.host == "0.0.0.0"
    assert settings.port == contract.default_port
    assert settings.json_logs
    if definition["command"][-1] != "migrate":
        assert settings.chaos_enabled, "the demo's chaos endpoints are on"
    for name in BY_NAME[contract.name].credentials:
        field = next(key for key, info in type(settings).model_fields.items() if name in str(info.validation_alias))
        value = getattr(settings, field)
        assert (value is not None) == (definition["command"][-1] != "migrate"), f"{compose_service}: {name}"


def test_urls_point_at_compose_services_on_their_ports() -> None:
    ports = {name: contract.default_port for name, _, contract in long_running()}
    for name, definition, _ in shop_containers():
        for key, value in environment(definition).items():
            if key.endswith("_URL") and value.startswith("http"):
                url = urlsplit(value)
                assert (url.hostname, url.port) in ports.items(), f"{name}: {key}={value}"
    storefront = environment(STACK["storefront"])
    assert storefront["STOREFRONT_PAYMENT_URL"] == "http://payment:8083", "every payment replica behind one name"


def test_database_urls_use_the_roles_the_init_service_creates() -> None:
    init = environment(STACK["postgres-init"])
    for name, definition, contract in shop_containers():
        if not contract.has_database:
            assert "DATABASE_URL" not in environment(definition), name
            continue
        url = urlsplit(environment(definition)["DATABASE_URL"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432), name
        assert (url.username, url.path) == (contract.name, f"/{contract.name}"), name
        assert url.password == init[f"{contract.name.upper()}_DB_PASSWORD"], name


# --- health, ports, limits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compose_service", [name for name, _, _ in long_running()])
def test_health_checks_ask_the_services_probe(compose_service: str) -> None:
    definition = STACK[compose_service]
    contract = ServiceContract(str(_image_service(definition)))
    test = definition["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], "exec form with the image's Python (no curl in a slim image)"
    code = test[3]
    compile(code, "healthcheck", "exec")
    (url,) = re.findall(r"http://[^'\"]+", code)
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    assert parts.port == contract.default_port
    assert parts.path in PROBES
    assert contract.has_route(parts.path)
    assert "timeout=" in code


@pytest.mark.parametrize("compose_service", [name for name, _, _ in long_running()])
def test_container_ports_match_the_service(compose_service: str) -> None:
    definition = STACK[compose_service]
    contract = ServiceContract(str(_image_service(definition)))
    port = str(contract.default_port)
    assert environment(definition).get("PORT", port) == port
    assert [str(item) for item in definition.get("expose", [port])] == [port]
    published = definition.get("ports", [])
    if contract.name == "storefront":
        assert published == [f"8080:{port}"], "the shop is at http://localhost:8080"
    else:
        assert published == [], f"{compose_service} is reached through storefront only"


def test_every_container_is_limited_restarted_and_read_only() -> None:
    for name, definition, _ in shop_containers():
        assert memory_bytes(definition["mem_limit"]) <= 512 * 1024**2, name
        assert definition["read_only"] is True, name
        assert any(str(mount).split(":")[0] == "/tmp" for mount in definition["tmpfs"]), name
        assert definition["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in definition["security_opt"], name
        if definition["command"][-1] == "migrate":
            assert definition["restart"] == "no", name
        else:
            assert definition["restart"] in {"unless-stopped", "on-failure", "always"}, name
            assert memory_bytes(definition["memswap_limit"]) == memory_bytes(definition["mem_limit"]), (
                f"{name}: no swap, so a leak reaches the limit instead of the disk"
            )
    for name in ("postgres", "prometheus", "grafana"):
        assert "mem_limit" in STACK[name], name
        assert STACK[name]["restart"] == "unless-stopped", name


def test_payment_runs_two_replicas_small_enough_to_catch_the_leak() -> None:
    payment = STACK["payment"]
    assert payment["deploy"]["replicas"] >= 2
    assert not {"container_name", "ports"} & set(payment), "replicas cannot share a name or a host port"
    limit = memory_bytes(payment["mem_limit"])
    assert limit <= 256 * 1024**2
    assert "MEMORY_BUDGET_FRACTION" not in environment(payment), "the default (0.8) of the limit"
    assert "MEMORY_BUDGET_BYTES" not in environment(payment), "the budget follows the container's limit"


# --- dependencies, PostgreSQL, monitoring ---------------------------------------------------------------------------


def test_depends_on_graph() -> None:
    graph = {name: set(depends_on(definition)) for name, definition in STACK.items()}
    order = list(TopologicalSorter(graph).static_order())  # raises on a cycle
    assert order.index("postgres") < order.index("postgres-init")
    for name, definition in STACK.items():
        for dependency, condition in depends_on(definition).items():
            assert dependency in STACK, f"{name} depends on unknown {dependency}"
            one_shot = STACK[dependency].get("restart") == "no"
            assert (condition == ONE_SHOT) == one_shot, f"{name} → {dependency}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in STACK[dependency], f"{dependency} has no health check to wait for"
            assert set(STACK[dependency].get("profiles", [])) <= set(definition.get("profiles", [])), name
    assert depends_on(STACK["postgres-init"]) == {"postgres": "service_healthy"}
    for name, definition, contract in shop_containers():
        if definition["command"][-1] == "migrate":
            assert depends_on(definition) == {"postgres-init": ONE_SHOT}, name
        elif contract.has_database:
            assert depends_on(definition)["postgres"] == "service_healthy", name
    assert set(depends_on(STACK["storefront"])) == {"catalog", "users", "payment"}


def test_postgres_keeps_its_data_in_a_named_volume_and_reports_health() -> None:
    postgres = STACK["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)?-\w+", postgres["image"])
    volume, target = postgres["volumes"][0].split(":")[:2]
    assert target == "/var/lib/postgresql/data"
    assert volume in COMPOSE["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    init = STACK["postgres-init"]
    assert init["image"] == postgres["image"]
    assert init["restart"] == "no"
    source, target = init["volumes"][0].split(":")[:2]
    script = next(arg for arg in init["command"] if arg.endswith(".sh"))
    assert (ROOT / source / Path(script).relative_to(target)) == ROOT / "k8s" / "base" / "postgres" / "provision.sh"
    assert init["command"][-1] == "--once", "provisions, then exits: a one-shot service"


def test_monitoring_is_an_optional_profile() -> None:
    profiled = {name for name, definition in STACK.items() if definition.get("profiles")}
    assert profiled == {"prometheus", "grafana"}
    assert all(STACK[name]["profiles"] == ["monitoring"] for name in profiled)


def test_every_bind_mounted_file_exists() -> None:
    for name, definition in STACK.items():
        for volume in definition.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_prometheus_scrapes_every_service_replica_on_its_port() -> None:
    (mount,) = [v for v in STACK["prometheus"]["volumes"] if v.endswith(":/etc/prometheus/prometheus.yml:ro")]
    config = yaml.safe_load((ROOT / mount.split(":")[0]).read_text(encoding="utf-8"))
    targets: dict[str, int] = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for sd in job["dns_sd_configs"]:
            assert sd["type"] == "A", "an A query lists every replica"
            targets |= dict.fromkeys(sd["names"], sd["port"])
    assert targets == {name: contract.default_port for name, _, contract in long_running()}
    assert all(contract.has_route("/metrics") for contract in service_contracts().values())
    rules = [v.split(":")[1] for v in STACK["prometheus"]["volumes"] if ":/etc/prometheus/rules" in v]
    assert all(Path(pattern).parent.as_posix() in rules for pattern in config.get("rule_files", []))
