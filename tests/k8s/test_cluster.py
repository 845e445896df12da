"""`python -m shop_devtools.cluster`, without a cluster: the commands it would run, its refusal when a tool is
missing, the secrets it writes, and which payment pod `leak` picks from `kubectl get pods -o json` output."""

import http.server
import json
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_devtools import cluster
from shop_devtools.cluster import ClusterError, Runner, Shop, Target
from shop_users.security import load_private_key
from shop_users.settings import UsersSettings
from shopkit.settings import PLACEHOLDER_SECRETS
from tests.k8s.conftest import K8S, REPO

PODS = json.loads((Path(__file__).parent / "data" / "payment-pods.json").read_text())
CONTEXTS = {"kind": "kind-resilient-shop", "minikube": "resilient-shop"}


@pytest.mark.parametrize("cluster_name", ["kind", "minikube"])
@pytest.mark.parametrize("profile", ["resilient", "fragile"])
@pytest.mark.parametrize("monitoring", [False, True])
def test_every_target_has_its_overlay(
    cluster_name: cluster.Cluster, profile: cluster.Profile, monitoring: bool
) -> None:
    target = Target(cluster_name, profile, monitoring)
    assert (K8S / "overlays" / target.overlay / "kustomization.yaml").is_file()
    assert target.context == CONTEXTS[cluster_name]
    assert ("fragile" in target.overlay) is (profile == "fragile")
    assert ("monitoring" in target.overlay) is monitoring


def test_kubectl_commands_always_name_their_context(tmp_path: Path) -> None:
    context = "kind-resilient-shop"
    commands = [
        cluster.apply_argv(context, tmp_path),
        cluster.workloads_argv(context),
        cluster.rollout_argv(context, "deployment.apps/payment"),
        cluster.payment_pods_argv(context),
        cluster.leak_argv(context, "payment-1", mb_per_second=4, max_mb=None),
        cluster.status_argv(context),
    ]
    for argv in commands:
        assert argv[:3] == ["kubectl", "--context", context]
    for argv in commands[1:]:  # the applied objects carry their namespace themselves
        assert argv[argv.index("--namespace") + 1] == "shop"


def test_apply_and_wait_commands(tmp_path: Path) -> None:
    overlay = tmp_path / "overlays" / "kind"
    assert cluster.apply_argv("c", overlay) == ["kubectl", "--context", "c", "apply", "--kustomize", str(overlay)]
    assert cluster.workloads_argv("c")[3:5] == ["get", "statefulsets,deployments"]
    assert cluster.rollout_argv("c", "statefulset.apps/postgres") == [
        "kubectl", "--context", "c", "rollout", "status", "statefulset.apps/postgres", "--namespace", "shop",
        "--timeout=300s",
    ]  # fmt: skip


def test_kind_and_minikube_commands() -> None:
    config = REPO / "k8s" / "kind" / "cluster.yaml"
    assert cluster.kind_create_argv(config) == [
        "kind", "create", "cluster", "--name", "resilient-shop", "--config", str(config), "--wait", "120s",
    ]  # fmt: skip
    assert cluster.kind_load_argv(["resilient-shop/catalog:0.1.0"]) == [
        "kind", "load", "docker-image", "--name", "resilient-shop", "resilient-shop/catalog:0.1.0",
    ]  # fmt: skip
    assert cluster.minikube_load_argv("resilient-shop/users:0.1.0") == [
        "minikube", "image", "load", "--profile", "resilient-shop", "resilient-shop/users:0.1.0",
    ]  # fmt: skip
    assert cluster.minikube_service_argv() == [
        "minikube", "service", "storefront", "--namespace", "shop", "--profile", "resilient-shop", "--url",
    ]  # fmt: skip
    assert cluster.down_argv("kind") == ["kind", "delete", "cluster", "--name", "resilient-shop"]
    assert cluster.down_argv("minikube") == ["minikube", "delete", "--profile", "resilient-shop"]
    assert cluster.build_images_argv() == [sys.executable, "-m", "shop_devtools.images"]
    assert cluster.list_images_argv()[-1] == "--list"


def test_image_refs_from_the_images_listing() -> None:
    listed = "catalog\nusers\n\npayment\nstorefront\n"
    assert cluster.image_refs(listed, "0.1.0") == [
        "resilient-shop/catalog:0.1.0",
        "resilient-shop/users:0.1.0",
        "resilient-shop/payment:0.1.0",
        "resilient-shop/storefront:0.1.0",
    ]
    assert cluster.image_refs("resilient-shop/catalog:0.2.0\n", "0.1.0") == ["resilient-shop/catalog:0.2.0"]
    with pytest.raises(ClusterError, match="never latest"):
        cluster.image_refs("resilient-shop/catalog:latest\n", "0.1.0")
    with pytest.raises(ClusterError, match="never latest"):
        cluster.image_refs("localhost:5000/catalog\n", "0.1.0")
    with pytest.raises(ClusterError, match="no image"):
        cluster.image_refs("\n", "0.1.0")


def test_pod_selection_from_kubectl_json() -> None:
    """Unready, terminating and pending pods are never picked; of the Ready ones, exactly one, the same each time."""
    assert cluster.ready_pod_names(PODS) == ["payment-6f9c8d7b5c-m2n8r", "payment-6f9c8d7b5c-zt5vh"]
    assert cluster.pick_ready_pod(PODS) == "payment-6f9c8d7b5c-m2n8r"
    none_ready = {**PODS, "items": [pod for pod in PODS["items"] if not cluster.is_ready(pod)]}
    with pytest.raises(ClusterError, match=r"no Ready payment pod \(3 payment pods"):
        cluster.pick_ready_pod(none_ready)
    with pytest.raises(ClusterError, match="no Ready payment pod"):
        cluster.pick_ready_pod({"apiVersion": "v1", "kind": "List", "items": []})


# --- the leak script, run against a stand-in of the pod's chaos endpoint ------------------------------------


@dataclass
class Recorded:
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    status: int = 202


@pytest.fixture
def chaos_endpoint() -> Iterator[tuple[int, Recorded]]:
    recorded = Recorded()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            recorded.requests.append((self.path, dict(self.headers.items()), body))
            answer = json.dumps({"leak": {"active": True}}).encode()
            self.send_response(recorded.status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], recorded
    finally:
        server.shutdown()
        server.server_close()


def run_leak_script(port: int, token: str, rate: str, cap: str) -> subprocess.CompletedProcess[str]:
    argv = cluster.leak_argv("ctx", "payment-1", mb_per_second=float(rate), max_mb=int(cap) if cap else None)
    script, args = argv[argv.index("-c") + 1], argv[argv.index("-c") + 2 :]
    assert args[0] == "8083"
    env = {"CHAOS_TOKEN": token, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", script, str(port), *args[1:]], env=env, capture_output=True, text=True, timeout=30
    )


def test_leak_script_posts_to_the_chaos_endpoint_with_the_pods_token(chaos_endpoint: tuple[int, Recorded]) -> None:
    port, recorded = chaos_endpoint
    result = run_leak_script(port, "token-from-the-secret", "4", "")
    assert result.returncode == 0, result.stderr
    result = run_leak_script(port, "token-from-the-secret", "8", "200")
    assert result.returncode == 0, result.stderr
    (path, headers, body), (_, _, capped) = recorded.requests
    assert path == "/chaos/leak"
    assert headers["X-Chaos-Token"] == "token-from-the-secret"
    assert headers["Content-Type"] == "application/json"
    assert body == {"mb_per_second": 4.0}
    assert capped == {"mb_per_second": 8.0, "max_mb": 200}


def test_leak_script_fails_when_the_endpoint_refuses(chaos_endpoint: tuple[int, Recorded]) -> None:
    port, recorded = chaos_endpoint
    recorded.status = 403
    result = run_leak_script(port, "wrong", "4", "")
    assert result.returncode == 1
    assert "answered 403" in result.stderr


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
        (["leak"], ["kubectl"]),
        (["status"], ["kubectl"]),
        (["down"], ["kind", "minikube"]),
        (["down", "--cluster", "minikube"], ["minikube"]),
    ],
)
def test_a_missing_tool_stops_the_command_and_is_named(
    argv: list[str], tools: list[str], empty_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cluster.run(argv) == 1
    error = capsys.readouterr().err
    for tool in tools:
        assert f"{tool} is required but was not found on PATH" in error
    assert "Traceback" not in error


def test_only_the_missing_tool_is_named(empty_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_tool(empty_path, "docker")
    fake_tool(empty_path, "kubectl")
    assert cluster.run(["kind-up"]) == 1
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
    written = cluster.generate_secrets(generated)
    assert sorted(path.name for path in written) == sorted(cluster.GENERATED_FILES)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    pem = (generated / "users-jwt-private-key.pem").read_text()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert isinstance(load_private_key(pem), Ed25519PrivateKey)
    token = cluster.read_env_file(generated / "chaos.env")["CHAOS_TOKEN"]
    assert len(token) == 64
    assert token.lower() not in PLACEHOLDER_SECRETS
    settings = UsersSettings(
        environment="production", jwt_private_key=pem, chaos_enabled=True, chaos_token=token, database_url="x"
    )
    assert settings.is_production
    passwords = cluster.read_env_file(generated / "postgres.env")
    assert set(passwords) == {"POSTGRES_PASSWORD", "CATALOG_DB_PASSWORD", "USERS_DB_PASSWORD", "PAYMENT_DB_PASSWORD"}
    assert len(set(passwords.values())) == 4
    for service in ("catalog", "users", "payment"):
        url = cluster.read_env_file(generated / f"{service}-database.env")["DATABASE_URL"]
        assert (
            url
            == f"postgresql://{service}:{passwords[service.upper() + '_DB_PASSWORD']}@postgres.shop.svc:5432/{service}"
        )

    before = {path.name: path.read_text() for path in generated.iterdir()}
    assert cluster.generate_secrets(generated) == []  # a second run keeps every value: the volume remembers them
    assert {path.name: path.read_text() for path in generated.iterdir()} == before
    (generated / "payment-database.env").unlink()
    assert cluster.generate_secrets(generated) == [generated / "payment-database.env"]
    assert (generated / "payment-database.env").read_text() == before["payment-database.env"]

    other = tmp_path / "other"
    cluster.generate_secrets(other)
    assert cluster.read_env_file(other / "chaos.env")["CHAOS_TOKEN"] != token
    assert (other / "users-jwt-private-key.pem").read_text() != pem


def test_generated_secrets_are_git_ignored() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for name in cluster.GENERATED_FILES:
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

    def output(self, argv: Sequence[str], *, check: bool = True) -> str:
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


def test_kind_up_creates_builds_loads_applies_and_waits(checkout: Path, tools: None) -> None:
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
    commands = [" ".join(argv) for argv in runner.ran]
    assert commands[0].startswith("kind create cluster --name resilient-shop --config ")
    assert commands[0].split("--config ")[1].split()[0] == str(checkout / "k8s" / "kind" / "cluster.yaml")
    assert commands[1] == f"{sys.executable} -m shop_devtools.images"
    names = IMAGES.split()
    assert commands[2:6] == [f"docker tag resilient-shop/{n}:0.1.0 resilient-shop/{n}:{CONTENT}" for n in names]
    assert commands[6] == "kind load docker-image --name resilient-shop " + " ".join(
        f"resilient-shop/{name}:{CONTENT}" for name in names
    )
    pinned = checkout / ".data" / "deploy" / "kind-fragile"
    assert commands[7] == f"kubectl --context kind-resilient-shop apply --kustomize {pinned}"
    assert [command.split(" rollout status ")[1].split()[0] for command in commands[8:]] == WORKLOADS.split()
    assert sorted(path.name for path in (checkout / "k8s" / "base" / "generated").iterdir()) == sorted(
        cluster.GENERATED_FILES
    )


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
    assert runner.ran[-1] == cluster.minikube_service_argv()
    assert any(argv[:3] == ["kubectl", "--context", "resilient-shop"] and "apply" in argv for argv in runner.ran)


def test_the_up_commands_remember_their_cluster_and_down_forgets_it(checkout: Path, tools: None) -> None:
    outputs = {
        "--list": IMAGES,
        "image inspect": IMAGE_ID,
        "statefulsets,deployments": WORKLOADS,
        "minikube ip": "192.168.49.2\n",
    }
    remembered = checkout / cluster.REMEMBERED
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
    runner = FakeRunner(outputs={"get-contexts": "kind-resilient-shop"})
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


def test_leak_targets_exactly_one_ready_payment_pod(checkout: Path, tools: None) -> None:
    runner = FakeRunner(outputs={"get pods": json.dumps(PODS)})
    Shop(checkout, runner).leak("kind", mb_per_second=4, max_mb=None)
    (argv,) = runner.ran
    assert argv == cluster.leak_argv("kind-resilient-shop", "payment-6f9c8d7b5c-m2n8r", mb_per_second=4, max_mb=None)
    assert argv[argv.index("--") + 1 : argv.index("--") + 3] == ["python", "-c"]


def test_down_deletes_what_the_up_commands_created(checkout: Path, tools: None) -> None:
    runner = FakeRunner()
    Shop(checkout, runner).down(None)
    assert runner.ran == [cluster.down_argv("kind"), cluster.down_argv("minikube")]


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
        assert cluster.parser().parse_args([*command, "--autoscaling"]).autoscaling is True
        assert cluster.parser().parse_args(command).autoscaling is False
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
    assert cluster.minikube_addon_argv("metrics-server") == addon
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
    annotations = {cluster.LAST_APPLIED: json.dumps(last_applied) + "\n"} if last_applied is not None else {}
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
            "get-contexts": "kind-resilient-shop",
            "get deployment payment": deployment_json(APPLIED_PAYMENT),
            "statefulsets,deployments": WORKLOADS,
        }
    )
    Shop(checkout, runner).deploy(Target("kind", autoscaling=True))
    applied = checkout / ".data" / "deploy" / "kind-autoscaling"
    forget = cluster.set_last_applied_argv("kind-resilient-shop", applied / "payment-last-applied.json")
    assert forget == [
        "kubectl", "--context", "kind-resilient-shop", "apply", "set-last-applied", "--filename",
        str(applied / "payment-last-applied.json"),
    ]  # fmt: skip
    assert runner.ran.index(forget) < runner.ran.index(cluster.apply_argv("kind-resilient-shop", applied))
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
            "get-contexts": "kind-resilient-shop",
            "get deployment payment": deployment_json(APPLIED_PAYMENT),
            "statefulsets,deployments": WORKLOADS,
        }
    )
    Shop(checkout, runner).deploy(Target("kind"))
    assert not [argv for argv in runner.ran if "set-last-applied" in argv]


def test_status_lists_the_autoscaler() -> None:
    assert "hpa" in cluster.status_argv("kind-resilient-shop")[4].split(",")
