"""`python -m shop_devtools.cluster`, without a cluster: the commands it would run, its refusal when a tool is
missing, the secrets it writes, which payment pod `leak` picks from the API's pod list and what it sends there."""

import json
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kubernetes import client

from shop_catalog.settings import CatalogSettings
from shop_devtools import images
from shop_devtools.cluster import cli, commands, kube
from shop_devtools.cluster.commands import Cluster, Profile, Target
from shop_devtools.cluster.generated_secrets import GENERATED_FILES, generate_secrets
from shop_devtools.cluster.pods import is_ready, ready_pods
from shop_devtools.cluster.runner import ClusterError, Runner
from shop_devtools.cluster.shop import LAST_APPLIED, REMEMBERED, Shop, image_refs
from shop_devtools.credentials import NAMES, read_env_file
from shop_users.security import load_private_key
from shop_users.settings import UsersSettings
from shopkit.settings import PLACEHOLDER_SECRETS
from tests.k8s.conftest import K8S, REPO
from tests.k8s.fake_api import PAYMENT_PORT, SECRET_TOKEN, FakeApi, Sent, payment_pods

PODS = payment_pods()
CONTEXTS = {"kind": "kind-resilient-shop", "minikube": "resilient-shop"}


@pytest.mark.parametrize("cluster_name", ["kind", "minikube"])
@pytest.mark.parametrize("profile", ["resilient", "fragile"])
@pytest.mark.parametrize("monitoring", [False, True])
def test_every_target_has_its_overlay(cluster_name: Cluster, profile: Profile, monitoring: bool) -> None:
    target = Target(cluster_name, profile, monitoring)
    assert (K8S / "overlays" / target.overlay / "kustomization.yaml").is_file()
    assert target.context == CONTEXTS[cluster_name]
    assert ("fragile" in target.overlay) is (profile == "fragile")
    assert ("monitoring" in target.overlay) is monitoring


def test_kubectl_commands_always_name_their_context(tmp_path: Path) -> None:
    context = "kind-resilient-shop"
    argvs = [
        commands.apply_argv(context, tmp_path),
        commands.workloads_argv(context),
        commands.rollout_argv(context, "deployment.apps/payment"),
        commands.status_argv(context),
    ]
    for argv in argvs:
        assert argv[:3] == ["kubectl", "--context", context]
    for argv in argvs[1:]:  # the applied objects carry their namespace themselves
        assert argv[argv.index("--namespace") + 1] == "shop"


def test_apply_and_wait_commands(tmp_path: Path) -> None:
    overlay = tmp_path / "overlays" / "kind"
    assert commands.apply_argv("c", overlay) == ["kubectl", "--context", "c", "apply", "--kustomize", str(overlay)]
    assert commands.workloads_argv("c")[3:5] == ["get", "statefulsets,deployments"]
    assert commands.rollout_argv("c", "statefulset.apps/postgres") == [
        "kubectl", "--context", "c", "rollout", "status", "statefulset.apps/postgres", "--namespace", "shop",
        "--timeout=300s",
    ]  # fmt: skip


def test_kind_and_minikube_commands() -> None:
    config = REPO / "k8s" / "kind" / "cluster.yaml"
    assert commands.kind_create_argv(config) == [
        "kind", "create", "cluster", "--name", "resilient-shop", "--config", str(config), "--wait", "120s",
    ]  # fmt: skip
    archive = Path("/data/images.tar")
    assert commands.docker_save_argv(archive, ["resilient-shop/catalog:0.1.0", "resilient-shop/users:0.1.0"]) == [
        "docker", "save", "--output", "/data/images.tar", "resilient-shop/catalog:0.1.0", "resilient-shop/users:0.1.0",
    ]  # fmt: skip
    assert commands.kind_load_argv(archive) == [
        "kind", "load", "image-archive", "/data/images.tar", "--name", "resilient-shop",
    ]  # fmt: skip
    assert commands.minikube_load_argv("resilient-shop/users:0.1.0") == [
        "minikube", "image", "load", "--profile", "resilient-shop", "resilient-shop/users:0.1.0",
    ]  # fmt: skip
    assert commands.minikube_service_argv() == [
        "minikube", "service", "storefront", "--namespace", "shop", "--profile", "resilient-shop", "--url",
    ]  # fmt: skip
    assert commands.down_argv("kind") == ["kind", "delete", "cluster", "--name", "resilient-shop"]
    assert commands.down_argv("minikube") == ["minikube", "delete", "--profile", "resilient-shop"]
    assert commands.build_images_argv() == [sys.executable, "-m", "shop_devtools.images"]
    assert commands.list_images_argv()[-1] == "--list"


def test_image_refs_from_the_images_listing() -> None:
    listed = "catalog\nusers\n\npayment\nstorefront\n"
    assert image_refs(listed, "0.1.0") == [
        "resilient-shop/catalog:0.1.0",
        "resilient-shop/users:0.1.0",
        "resilient-shop/payment:0.1.0",
        "resilient-shop/storefront:0.1.0",
    ]
    assert image_refs("resilient-shop/catalog:0.2.0\n", "0.1.0") == ["resilient-shop/catalog:0.2.0"]
    with pytest.raises(ClusterError, match="never latest"):
        image_refs("resilient-shop/catalog:latest\n", "0.1.0")
    with pytest.raises(ClusterError, match="never latest"):
        image_refs("localhost:5000/catalog\n", "0.1.0")
    with pytest.raises(ClusterError, match="no image"):
        image_refs("\n", "0.1.0")


def test_pod_selection_from_the_api_pod_list() -> None:
    """Unready, terminating and pending pods are never picked; of the Ready ones, exactly one, the same each time."""
    names = ["payment-6f9c8d7b5c-m2n8r", "payment-6f9c8d7b5c-zt5vh"]
    assert [pod["metadata"]["name"] for pod in ready_pods(PODS)] == names
    assert [pod["metadata"]["name"] for pod in ready_pods(reversed(PODS))] == names
    cluster = kube.Cluster(client.ApiClient(client.Configuration()), "shop", selector="s")
    assert cluster.pick_ready_pod(PODS)["metadata"]["name"] == names[0]
    none_ready = [pod for pod in PODS if not is_ready(pod)]
    with pytest.raises(ClusterError, match=r"no Ready pod among the 3 matching s in namespace shop"):
        cluster.pick_ready_pod(none_ready)
    with pytest.raises(ClusterError, match="no Ready pod among the 0"):
        cluster.pick_ready_pod([])


@pytest.mark.parametrize(
    ("change", "ready"),
    [
        ({}, True),
        ({"status": {"phase": "Pending"}}, False),
        ({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, False),
        ({"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}, False),
        ({"metadata": {"deletionTimestamp": "2026-11-25T09:05:00Z"}}, False),
    ],
    ids=["running and ready", "pending", "not ready", "no ready condition", "being deleted"],
)
def test_a_ready_pod_runs_has_its_ready_condition_true_and_is_not_being_deleted(
    change: dict[str, dict[str, Any]], ready: bool
) -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": "payment-1"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    for part, fields in change.items():
        pod[part] = {**pod[part], **fields}
    assert is_ready(pod) is ready


# --- missing tools ---------------------------------------------------------------------------------------------


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


@pytest.mark.parametrize(
    ("argv", "tools"),
    [
        (["kind-up"], ["docker", "kind", "kubectl"]),
        (["minikube-up", "--profile", "fragile"], ["docker", "minikube", "kubectl"]),
        (["deploy"], ["kubectl"]),
        (["status"], ["kubectl"]),
        (["down"], ["kind", "minikube"]),
        (["down", "--cluster", "minikube"], ["minikube"]),
    ],
)
def test_a_missing_tool_stops_the_command_and_is_named(
    argv: list[str], tools: list[str], empty_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(argv) == 1
    error = capsys.readouterr().err
    for tool in tools:
        assert f"{tool} is required but was not found on PATH" in error
    assert "Traceback" not in error


def test_only_the_missing_tool_is_named(empty_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_tool(empty_path, "docker")
    fake_tool(empty_path, "kubectl")
    assert cli.run(["kind-up"]) == 1
    error = capsys.readouterr().err
    assert "kind is required" in error
    assert "docker is required" not in error
    assert "kubectl is required" not in error


def fake_tool(directory: Path, name: str) -> None:
    """An executable that only needs to be found by shutil.which: the fake runner below never runs it."""
    path = directory / name
    path.write_text("")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


# --- secrets ---------------------------------------------------------------------------------------------------


def test_secrets_are_random_valid_private_and_kept(tmp_path: Path) -> None:
    generated = tmp_path / "generated"
    written = generate_secrets(generated)
    assert sorted(path.name for path in written) == sorted(GENERATED_FILES)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    pem = (generated / "users-jwt-private-key.pem").read_text()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert isinstance(load_private_key(pem), Ed25519PrivateKey)
    token = read_env_file(generated / "chaos.env")["CHAOS_TOKEN"]
    assert len(token) == 64
    assert token.lower() not in PLACEHOLDER_SECRETS
    settings = UsersSettings(
        environment="production", jwt_private_key=pem, chaos_enabled=True, chaos_token=token, database_url="x"
    )
    assert settings.is_production
    passwords = read_env_file(generated / "postgres.env")
    assert set(passwords) == {"POSTGRES_PASSWORD", "CATALOG_DB_PASSWORD", "USERS_DB_PASSWORD", "PAYMENT_DB_PASSWORD"}
    assert len(set(passwords.values())) == 4
    for service in ("catalog", "users", "payment"):
        url = read_env_file(generated / f"{service}-database.env")["DATABASE_URL"]
        assert (
            url
            == f"postgresql://{service}:{passwords[service.upper() + '_DB_PASSWORD']}@postgres.shop.svc:5432/{service}"
        )
    credentials = read_env_file(generated / "credentials.env")
    assert list(credentials) == list(NAMES)
    assert len(set(credentials.values())) == len(NAMES)
    assert all(len(value) == 64 for value in credentials.values())
    catalog = CatalogSettings.model_validate({name.lower(): value for name, value in credentials.items()})
    assert catalog.operator_credential is not None, "a credential the services accept"

    before = {path.name: path.read_text() for path in generated.iterdir()}
    assert generate_secrets(generated) == []  # a second run keeps every value: the volume remembers them
    assert {path.name: path.read_text() for path in generated.iterdir()} == before
    (generated / "payment-database.env").unlink()
    assert generate_secrets(generated) == [generated / "payment-database.env"]
    assert (generated / "payment-database.env").read_text() == before["payment-database.env"]

    (generated / "credentials.env").write_text(
        (generated / "credentials.env").read_text().replace("OPERATOR_CREDENTIAL=", "OPERATOR_CREDENTIAL=new,")
    )
    assert generate_secrets(generated) == [], "a rotation written by hand is kept"
    assert read_env_file(generated / "credentials.env")["OPERATOR_CREDENTIAL"].startswith("new,")

    other = tmp_path / "other"
    generate_secrets(other)
    assert read_env_file(other / "chaos.env")["CHAOS_TOKEN"] != token
    assert read_env_file(other / "credentials.env") != credentials
    assert (other / "users-jwt-private-key.pem").read_text() != pem


def test_generated_secrets_are_git_ignored() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for name in GENERATED_FILES:
        path = f"k8s/base/generated/{name}"
        result = subprocess.run(["git", "check-ignore", "--quiet", path], cwd=REPO, check=False, timeout=30)
        assert result.returncode == 0, f"{path} is not git-ignored"


# --- whole commands, with a runner that records instead of running --------------------------------------------


@dataclass
class FakeRunner(Runner):
    outputs: dict[str, str] = field(default_factory=dict)
    ran: list[list[str]] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)

    def run(self, argv: Sequence[str]) -> None:
        self.ran.append(list(argv))

    def output(self, argv: Sequence[str]) -> str:
        joined = " ".join(argv)
        return next((text for key, text in self.outputs.items() if key in joined), "")

    def succeeds(self, argv: Sequence[str]) -> bool:
        joined = " ".join(argv)
        return next((ok for key, ok in self.checks.items() if key in joined), False)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(K8S, root / "k8s", ignore=shutil.ignore_patterns("generated"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture
def tools(empty_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for tool in ("docker", "kind", "minikube", "kubectl"):
        fake_tool(empty_path, tool)
    monkeypatch.setattr("shop_devtools.cluster.shop.ports_in_use", lambda ports: [])


IMAGES = "catalog\nusers\npayment\nstorefront\n"
WORKLOADS = "statefulset.apps/postgres\ndeployment.apps/catalog\ndeployment.apps/payment\ndeployment.apps/storefront\n"


IMAGE_ID = "sha256:" + "3f9c0e" * 10
CONTENT = "0.1.0-3f9c0e3f9c0e"
BUILT = {"--list": IMAGES, "image inspect": IMAGE_ID}
"""What building the images answers: the images listed and each one's id."""


def test_kind_up_creates_builds_loads_applies_and_waits(
    checkout: Path, tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeApi(status=200).install(monkeypatch)
    runner = FakeRunner(
        outputs={
            "kind get clusters": "",
            "--list": IMAGES,
            "image inspect": IMAGE_ID,
            "get-contexts": "kind-resilient-shop\n",
            "get statefulsets,deployments": WORKLOADS,
        }
    )
    Shop(checkout, runner).kind_up(Target("kind", "fragile"))
    ran = [" ".join(argv) for argv in runner.ran]
    assert ran[0].startswith("kind create cluster --name resilient-shop --config ")
    assert ran[0].split("--config ")[1].split()[0] == str(checkout / "k8s" / "kind" / "cluster.yaml")
    assert ran[1] == f"{sys.executable} -m shop_devtools.images"
    names = IMAGES.split()
    assert ran[2:6] == [f"docker tag resilient-shop/{n}:0.1.0 resilient-shop/{n}:{CONTENT}" for n in names]
    archive = checkout / ".data" / "deploy" / "images.tar"
    assert ran[6] == f"docker save --output {archive} " + " ".join(f"resilient-shop/{n}:{CONTENT}" for n in names)
    assert ran[7] == f"kind load image-archive {archive} --name resilient-shop", "works with every image store"
    assert not archive.exists()
    pinned = checkout / ".data" / "deploy" / "kind-fragile"
    assert ran[8] == f"kubectl --context kind-resilient-shop apply --kustomize {pinned}"
    assert [command.split(" rollout status ")[1].split()[0] for command in ran[9:]] == WORKLOADS.split()
    assert sorted(path.name for path in (checkout / "k8s" / "base" / "generated").iterdir()) == sorted(GENERATED_FILES)
    ready = [pod["metadata"]["name"] for pod in payment_pods() if is_ready(pod)]
    assert api.listed == [("shop", "app.kubernetes.io/name in (storefront,catalog,users,payment)")], "the whole shop"
    assert [(sent.pod, sent.method, sent.path) for sent in api.sent] == [(name, "GET", "/ready") for name in ready], (
        "without probes Ready means started: up waits until each Ready pod's app answers"
    )


def test_a_fragile_shop_whose_apps_do_not_answer_is_not_reported_up(
    checkout: Path, tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeApi(status=503).install(monkeypatch)
    monkeypatch.setattr("shop_devtools.cluster.shop.LISTEN_TIMEOUT_SECONDS", 0)
    runner = FakeRunner(outputs={**BUILT, "get-contexts": "kind-resilient-shop\n", "get statefulsets": WORKLOADS})
    with pytest.raises(ClusterError, match=r"payment-\S+, payment-\S+ did not answer GET /ready within 0 s"):
        Shop(checkout, runner).kind_up(Target("kind", "fragile"))


def test_with_probes_rollout_status_is_the_wait(checkout: Path, tools: None, monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(status=503).install(monkeypatch)
    runner = FakeRunner(outputs={**BUILT, "get-contexts": "kind-resilient-shop\n", "get statefulsets": WORKLOADS})
    Shop(checkout, runner).kind_up(Target("kind", "resilient"))
    assert api.sent == [], "Ready already means the readiness probe passed"


def test_kind_up_reuses_an_existing_cluster(checkout: Path, tools: None) -> None:
    runner = FakeRunner(
        outputs={
            "kind get clusters": "other\nresilient-shop\n",
            "--list": IMAGES,
            "image inspect": IMAGE_ID,
            "get-contexts": "kind-resilient-shop",
            "statefulsets,deployments": WORKLOADS,
        }
    )
    Shop(checkout, runner).kind_up(Target("kind"))
    assert not [argv for argv in runner.ran if argv[:3] == ["kind", "create", "cluster"]]
    applied = next(argv for argv in runner.ran if "apply" in argv)
    assert applied[-1] == str(checkout / ".data" / "deploy" / "kind")


def test_kind_up_refuses_host_ports_in_use(checkout: Path, tools: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shop_devtools.cluster.shop.ports_in_use", lambda ports: [8080])
    runner = FakeRunner(outputs={"kind get clusters": ""})
    with pytest.raises(ClusterError, match=r"in use: 8080 \(storefront\)"):
        Shop(checkout, runner).kind_up(Target("kind"))
    assert runner.ran == []


def test_minikube_up_loads_each_image_and_prints_the_service_url(checkout: Path, tools: None) -> None:
    runner = FakeRunner(
        outputs={
            "--list": IMAGES,
            "image inspect": IMAGE_ID,
            "get-contexts": "resilient-shop\n",
            "statefulsets,deployments": WORKLOADS,
        },
        checks={"minikube status": False},
    )
    Shop(checkout, runner).minikube_up(Target("minikube"))
    assert runner.ran[0][:2] == ["minikube", "start"]
    loads = [argv[-1] for argv in runner.ran if argv[:3] == ["minikube", "image", "load"]]
    assert loads == [f"resilient-shop/{name}:{CONTENT}" for name in IMAGES.split()]
    assert runner.ran[-1] == commands.minikube_service_argv()
    assert any(argv[:3] == ["kubectl", "--context", "resilient-shop"] and "apply" in argv for argv in runner.ran)


def test_the_up_commands_remember_their_cluster_and_down_forgets_it(checkout: Path, tools: None) -> None:
    outputs = {
        "--list": IMAGES,
        "image inspect": IMAGE_ID,
        "statefulsets,deployments": WORKLOADS,
        "minikube ip": "192.168.49.2\n",
    }
    remembered = checkout / REMEMBERED
    Shop(checkout, FakeRunner(outputs={**outputs, "get-contexts": "kind-resilient-shop"})).kind_up(Target("kind"))
    assert "CLUSTER = kind\nSHOP_URL = http://localhost:8080\nKUBE_CONTEXT = kind-resilient-shop\n" in (
        remembered.read_text()
    )
    runner = FakeRunner(outputs={**outputs, "get-contexts": "resilient-shop"}, checks={"minikube status": False})
    Shop(checkout, runner).minikube_up(Target("minikube"))
    assert "--cni=calico" in runner.ran[0], "a network plugin that enforces NetworkPolicies"
    text = remembered.read_text()
    assert "CLUSTER = minikube\nSHOP_URL = http://192.168.49.2:30080\nKUBE_CONTEXT = resilient-shop\n" in text
    Shop(checkout, FakeRunner()).down("minikube")
    assert not remembered.exists()


def test_a_changed_image_gets_a_new_tag_that_the_deployed_manifests_name(checkout: Path) -> None:
    """Tags by content: a rebuilt image with other content is a new tag, so applying again rolls the pods out
    (a fixed tag with IfNotPresent kept the old pods); the pinned kustomization renders with `kubectl kustomize`."""
    shop = Shop(checkout, FakeRunner(outputs={"--list": IMAGES, "image inspect": IMAGE_ID}))
    first = shop.images()
    shop.runner = FakeRunner(outputs={"--list": IMAGES, "image inspect": "sha256:" + "7" * 64})
    second = shop.images()
    assert first != second
    assert second[0] == "resilient-shop/catalog:0.1.0-777777777777"
    shop.secrets()  # what kustomize reads besides the manifests
    pinned = shop.deployable(Target("kind"))
    rendered = subprocess.run(["kubectl", "kustomize", str(pinned)], capture_output=True, text=True, check=True).stdout
    images = set(re.findall(r"image: (resilient-shop/\S+)", rendered))
    assert images == {f"resilient-shop/{name}:0.1.0-777777777777" for name in IMAGES.split()}


def test_deploy_fails_when_nothing_was_deployed(checkout: Path, tools: None) -> None:
    runner = FakeRunner(outputs={**BUILT, "get-contexts": "kind-resilient-shop"})
    with pytest.raises(ClusterError, match="nothing to wait for"):
        Shop(checkout, runner).deploy(Target("kind"))


def test_deploy_needs_the_clusters_context(checkout: Path, tools: None) -> None:
    runner = FakeRunner(outputs={"get-contexts": "minikube\nkind-other\n"})
    with pytest.raises(ClusterError, match=r"no kubectl context kind-resilient-shop: .*make kind-up"):
        Shop(checkout, runner).deploy(Target("kind"))
    assert runner.ran == []


def test_monitoring_needs_its_component(checkout: Path, tools: None) -> None:
    shutil.rmtree(checkout / "k8s" / "components" / "monitoring")
    with pytest.raises(ClusterError, match="components/monitoring"):
        Shop(checkout, FakeRunner()).deploy(Target("kind", monitoring=True))


def test_leak_sends_one_leak_to_exactly_one_ready_payment_pod_with_the_secrets_token(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi().install(monkeypatch)
    runner = FakeRunner()
    Shop(checkout, runner).leak("kind", mb_per_second=4, max_mb=None)
    Shop(checkout, runner).leak("minikube", mb_per_second=8, max_mb=200)
    assert runner.ran == [], "no kubectl: the Kubernetes client talks to the pod"
    assert api.contexts == ["kind-resilient-shop", "resilient-shop"]
    assert api.listed == [("shop", "app.kubernetes.io/name=payment")] * 2
    token = {"X-Chaos-Token": SECRET_TOKEN}
    assert api.sent == [
        Sent("payment-6f9c8d7b5c-m2n8r", PAYMENT_PORT, "POST", "/chaos/leak", {"mb_per_second": 4.0}, token),
        Sent(
            "payment-6f9c8d7b5c-m2n8r",
            PAYMENT_PORT,
            "POST",
            "/chaos/leak",
            {"mb_per_second": 8.0, "max_mb": 200},
            token,
        ),
    ]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "leaking 4 MiB/s in payment-6f9c8d7b5c-m2n8r, 1 of 2 Ready payment pods"
    assert (
        out[1] == "POST /chaos/leak {'mb_per_second': 4.0} to payment-6f9c8d7b5c-m2n8r through the API's port-forward"
    )
    assert out[2] == "watch it: kubectl --context kind-resilient-shop get rs,pods -n shop -w"
    assert out[5] == "watch it: kubectl --context resilient-shop get rs,pods -n shop -w"


def test_a_dry_run_leak_picks_the_pod_and_sends_nothing(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi().install(monkeypatch)
    Shop(checkout, FakeRunner(dry_run=True)).leak("kind", mb_per_second=4, max_mb=None)
    assert api.sent == []
    assert "in payment-6f9c8d7b5c-m2n8r, 1 of 2 Ready payment pods" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (
            404,
            r"chaos is disabled at pod payment-6f9c8d7b5c-m2n8r \(POST /chaos/leak answered 404\): start the shop with",
        ),
        (403, r"pod payment-6f9c8d7b5c-m2n8r refused the chaos token \(403\)"),
        (500, r"POST /chaos/leak at pod payment-6f9c8d7b5c-m2n8r answered 500: .*answered by the fake pod"),
    ],
)
def test_a_refused_leak_is_an_error_saying_what_to_do(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, status: int, says: str
) -> None:
    FakeApi(status=status).install(monkeypatch)
    with pytest.raises(ClusterError, match=says):
        Shop(checkout, FakeRunner()).leak("kind", mb_per_second=4, max_mb=None)


def test_leak_with_no_ready_payment_pod_says_so(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeApi(pods=[pod for pod in payment_pods() if not is_ready(pod)]).install(monkeypatch)
    with pytest.raises(ClusterError, match=r"no Ready pod among the 3 matching app\.kubernetes\.io/name=payment"):
        Shop(checkout, FakeRunner()).leak("kind", mb_per_second=4, max_mb=None)


def test_leak_refused_by_the_api_says_why(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeApi().install(monkeypatch)

    def forbidden(*_: Any, **__: Any) -> Any:
        raise client.exceptions.ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(client.CoreV1Api, "read_namespaced_secret", forbidden)
    with pytest.raises(ClusterError, match=r"the Kubernetes API of context kind-resilient-shop refused: \(403\)"):
        Shop(checkout, FakeRunner()).leak("kind", mb_per_second=4, max_mb=None)


@pytest.mark.parametrize(("name", "up"), [("kind", "make kind-up"), ("minikube", "make minikube-up")])
def test_leak_needs_the_clusters_context(
    name: Cluster, up: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": []}))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.chdir(REPO)
    assert cli.run(["leak", "--cluster", name]) == 1
    error = capsys.readouterr().err
    assert f"no kubectl context {CONTEXTS[name]}: create the cluster with `{up}`" in error
    assert "Traceback" not in error


def test_down_deletes_what_the_up_commands_created(checkout: Path, tools: None) -> None:
    runner = FakeRunner()
    Shop(checkout, runner).down(None)
    assert runner.ran == [commands.down_argv("kind"), commands.down_argv("minikube")]


def test_dry_run_prints_and_runs_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    Runner(dry_run=True).run([sys.executable, "-c", f"open({str(marker)!r}, 'w')"])
    assert not marker.exists()
    assert capsys.readouterr().out.startswith(f"$ {sys.executable} -c ")


def test_every_overlay_is_a_target_of_the_tool() -> None:
    """No overlay the tool cannot deploy, no target without its overlay."""
    targets = {
        Target(name, profile, monitoring).overlay
        for name in ("kind", "minikube")
        for profile in ("resilient", "fragile")
        for monitoring in (False, True)
    }
    assert {path.parent.name for path in (K8S / "overlays").glob("*/kustomization.yaml")} == targets


# --- --autoscaling ---------------------------------------------------------------------------------------------


def applied_components(applied: Path) -> list[str]:
    """The components the kustomization `deploy` applied adds to the overlay, by directory name."""
    kustomization = yaml.safe_load((applied / "kustomization.yaml").read_text())
    for path in kustomization.get("components", []):
        assert (applied / path / "kustomization.yaml").is_file(), path
    return [Path(path).name for path in kustomization.get("components", [])]


def test_autoscaling_adds_no_overlay_and_is_a_flag_of_every_up_command() -> None:
    for command in (["kind-up"], ["minikube-up"], ["deploy", "--cluster", "minikube"]):
        assert cli.parser().parse_args([*command, "--autoscaling"]).autoscaling is True
        assert cli.parser().parse_args(command).autoscaling is False
    autoscaled = Target("kind", monitoring=True, autoscaling=True)
    assert autoscaled.overlay == Target("kind", monitoring=True).overlay == "kind-monitoring"
    assert autoscaled.deployment == "kind-monitoring-autoscaling"


def test_autoscaling_on_kind_applies_the_hpa_and_our_metrics_server(checkout: Path, tools: None) -> None:
    runner = FakeRunner(
        outputs={
            "kind get clusters": "resilient-shop",
            "--list": IMAGES,
            "image inspect": IMAGE_ID,
            "get-contexts": "kind-resilient-shop",
            "statefulsets,deployments": WORKLOADS,
        }
    )
    Shop(checkout, runner).kind_up(Target("kind", autoscaling=True))
    applied = Path(next(argv for argv in runner.ran if "apply" in argv)[-1])
    assert applied == checkout / ".data" / "deploy" / "kind-autoscaling"
    assert applied_components(applied) == ["autoscaling", "metrics-server"]
    assert "images:" in (applied / "kustomization.yaml").read_text(), "still pinned to the loaded images"
    assert not [argv for argv in runner.ran if argv[0] == "minikube"]


def test_autoscaling_on_minikube_enables_its_addon_instead_of_our_metrics_server(checkout: Path, tools: None) -> None:
    outputs = {
        "--list": IMAGES,
        "image inspect": IMAGE_ID,
        "get-contexts": "resilient-shop",
        "statefulsets,deployments": WORKLOADS,
    }
    runner = FakeRunner(outputs=outputs, checks={"minikube status": True})
    Shop(checkout, runner).minikube_up(Target("minikube", autoscaling=True))
    addon = ["minikube", "addons", "enable", "metrics-server", "--profile", "resilient-shop"]
    assert commands.minikube_addon_argv("metrics-server") == addon
    applies = [i for i, argv in enumerate(runner.ran) if "apply" in argv]
    assert runner.ran.index(addon) < applies[0], "the metrics API is there before the HPA asks for it"
    assert applied_components(Path(runner.ran[applies[0]][-1])) == ["autoscaling"]

    plain = FakeRunner(outputs=outputs, checks={"minikube status": True})
    Shop(checkout, plain).minikube_up(Target("minikube"))
    assert addon not in plain.ran
    assert Path(next(argv for argv in plain.ran if "apply" in argv)[-1]) == checkout / ".data" / "deploy" / "minikube"


def test_autoscaling_without_loaded_images_still_applies_its_components(checkout: Path, tools: None) -> None:
    shop = Shop(checkout, FakeRunner())
    assert shop.deployable(Target("kind")) == checkout / "k8s" / "overlays" / "kind"
    applied = shop.deployable(Target("kind", autoscaling=True))
    assert applied_components(applied) == ["autoscaling", "metrics-server"]
    assert "images:" not in (applied / "kustomization.yaml").read_text()


def test_autoscaling_refuses_the_fragile_profile(checkout: Path, tools: None) -> None:
    runner = FakeRunner(outputs={"kind get clusters": ""})
    with pytest.raises(ClusterError, match="resilient profile only"):
        Shop(checkout, runner).kind_up(Target("kind", "fragile", autoscaling=True))
    assert runner.ran == []


def deployment_json(last_applied: dict[str, Any] | None) -> str:
    annotations = {LAST_APPLIED: json.dumps(last_applied) + "\n"} if last_applied is not None else {}
    return json.dumps({"kind": "Deployment", "metadata": {"name": "payment", "annotations": annotations}})


APPLIED_PAYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "payment", "namespace": "shop"},
    "spec": {"replicas": 3, "revisionHistoryLimit": 5},
}


def test_turning_autoscaling_on_forgets_the_applied_replica_count_first(checkout: Path, tools: None) -> None:
    """A Deployment applied with `replicas: 3`, applied again without the field, would fall back to 1 replica:
    `deploy` takes the field out of its last-applied configuration first (what `kubectl apply edit-last-applied`
    does by hand)."""
    runner = FakeRunner(
        outputs={
            **BUILT,
            "get-contexts": "kind-resilient-shop",
            "get deployment payment": deployment_json(APPLIED_PAYMENT),
            "statefulsets,deployments": WORKLOADS,
        }
    )
    Shop(checkout, runner).deploy(Target("kind", autoscaling=True))
    applied = checkout / ".data" / "deploy" / "kind-autoscaling"
    forget = commands.set_last_applied_argv("kind-resilient-shop", applied / "payment-last-applied.json")
    assert forget == [
        "kubectl", "--context", "kind-resilient-shop", "apply", "set-last-applied", "--filename",
        str(applied / "payment-last-applied.json"),
    ]  # fmt: skip
    assert runner.ran.index(forget) < runner.ran.index(commands.apply_argv("kind-resilient-shop", applied))
    remembered = json.loads((applied / "payment-last-applied.json").read_text())
    assert remembered == {**APPLIED_PAYMENT, "spec": {"revisionHistoryLimit": 5}}


@pytest.mark.parametrize(
    "found",
    ["", deployment_json(None), deployment_json({**APPLIED_PAYMENT, "spec": {"revisionHistoryLimit": 5}})],
    ids=["no deployment yet", "never applied", "already autoscaled"],
)
def test_nothing_to_forget_when_no_replica_count_was_applied(checkout: Path, tools: None, found: str) -> None:
    runner = FakeRunner(
        outputs={
            **BUILT,
            "get-contexts": "kind-resilient-shop",
            "get deployment payment": found,
            "statefulsets,deployments": WORKLOADS,
        }
    )
    Shop(checkout, runner).deploy(Target("kind", autoscaling=True))
    assert not [argv for argv in runner.ran if "set-last-applied" in argv]


def test_without_autoscaling_deploy_leaves_the_replica_count_alone(checkout: Path, tools: None) -> None:
    runner = FakeRunner(
        outputs={
            **BUILT,
            "get-contexts": "kind-resilient-shop",
            "get deployment payment": deployment_json(APPLIED_PAYMENT),
            "statefulsets,deployments": WORKLOADS,
        }
    )
    Shop(checkout, runner).deploy(Target("kind"))
    assert not [argv for argv in runner.ran if "set-last-applied" in argv]


def test_status_lists_the_autoscaler() -> None:
    assert "hpa" in commands.status_argv("kind-resilient-shop")[4].split(",")


# --- images reaching the node, and the minikube profile ---------------------------------------------------------


def test_deploy_with_no_images_loaded_builds_and_loads_them_first(checkout: Path, tools: None) -> None:
    """After `make clean` took `.data/` (or on a first deploy) the overlay's own tags were never loaded: `deploy`
    builds and loads the images before applying, so no pod waits in ImagePullBackOff."""
    outputs = {**BUILT, "get-contexts": "resilient-shop", "statefulsets,deployments": WORKLOADS}
    runner = FakeRunner(outputs=outputs)
    Shop(checkout, runner).deploy(Target("minikube"))
    loads = [argv[-1] for argv in runner.ran if argv[:3] == ["minikube", "image", "load"]]
    assert loads == [f"resilient-shop/{name}:{CONTENT}" for name in IMAGES.split()]
    applied = next(i for i, argv in enumerate(runner.ran) if "apply" in argv)
    assert max(i for i, argv in enumerate(runner.ran) if argv[:3] == ["minikube", "image", "load"]) < applied
    assert CONTENT in (Path(runner.ran[applied][-1]) / "kustomization.yaml").read_text()

    again = FakeRunner(outputs=outputs)
    Shop(checkout, again).deploy(Target("minikube"))
    assert not [argv for argv in again.ran if "shop_devtools.images" in argv or argv[:2] == ["minikube", "image"]]


def minikube_profiles(memory: int, cni: str) -> str:
    """What `minikube profile list --output json` prints for the shop's profile (and another one)."""
    config = {"Name": "resilient-shop", "Memory": memory, "CPUs": 2, "KubernetesConfig": {"CNI": cni}}
    other = {"Name": "minikube", "Config": {"Name": "minikube", "Memory": 1024, "KubernetesConfig": {"CNI": ""}}}
    return json.dumps({"invalid": [], "valid": [other, {"Name": "resilient-shop", "Status": "OK", "Config": config}]})


@pytest.mark.parametrize(
    ("memory", "cni", "says"),
    [(2048, "calico", "has 2048 MB, CNI calico"), (8192, "", "has 8192 MB, CNI auto"), (4096, "flannel", "flannel")],
)
def test_minikube_up_refuses_a_profile_with_less_memory_or_another_network_plugin(
    checkout: Path, tools: None, memory: int, cni: str, says: str
) -> None:
    """`minikube start` keeps an existing profile's memory and network plugin, whatever it is given."""
    runner = FakeRunner(outputs={"profile list": minikube_profiles(memory, cni)}, checks={"minikube status": True})
    with pytest.raises(ClusterError, match=rf"{says}; the shop needs 4096 MB and calico: `minikube delete --profile"):
        Shop(checkout, runner).minikube_up(Target("minikube"))
    assert runner.ran == []


def test_minikube_up_reuses_a_profile_that_fits(checkout: Path, tools: None) -> None:
    outputs = {
        **BUILT,
        "profile list": minikube_profiles(8192, "calico"),
        "get-contexts": "resilient-shop",
        "statefulsets,deployments": WORKLOADS,
    }
    runner = FakeRunner(outputs=outputs, checks={"minikube status": True})
    Shop(checkout, runner).minikube_up(Target("minikube"))
    assert commands.minikube_start_argv() not in runner.ran
    assert commands.minikube_start_argv() == [
        "minikube", "start", "--profile", "resilient-shop", "--memory=4096", "--cpus=2", "--cni=calico",
    ]  # fmt: skip


def test_images_are_built_without_attestations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With Docker's containerd image store a provenance attestation is an image-index entry that `docker save`
    leaves out, and importing the archive into kind's node then fails: the build turns default attestations off."""
    seen: list[dict[str, str]] = []

    def docker(argv: list[str], *, env: dict[str, str], check: bool) -> subprocess.CompletedProcess[str]:
        seen.append(env)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr("shop_devtools.images.subprocess.run", docker)
    fake_tool(tmp_path, "docker")
    images.build(["users"], root=REPO, environ={"PATH": str(tmp_path), "BUILDX_NO_DEFAULT_ATTESTATIONS": "0"})
    assert [env["BUILDX_NO_DEFAULT_ATTESTATIONS"] for env in seen] == ["1"]
    assert seen[0]["DOCKER_BUILDKIT"] == "1"
