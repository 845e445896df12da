"""`make run`'s launcher as a user runs it: a real process tree (PostgreSQL and the four services), stopped by a
signal, a dying service or a SIGKILL, after which no process and no port may be left.

Every launch uses its own data directory and unusual ports, so it never collides with a developer's `make run`.
"""

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shop_devtools.credentials import NAMES, OPERATOR, bearer, read_env_file
from shop_devtools.pg import EmbeddedPostgres, find_bin_dir
from shop_devtools.runstate import RunState
from shop_devtools.topology import BY_NAME
from shop_devtools.topology import SERVICES as TOPOLOGY

pytestmark = pytest.mark.process

SERVICES = tuple(service.name for service in TOPOLOGY)
COLD_START_BUDGET = 60.0
WARM_START_BUDGET = 10.0
WARM_START_SLACK = 1.5
STOP_BUDGET = 30.0  # the launcher's own bound is 10 s for the services, plus PostgreSQL's shutdown
CHAOS_TOKEN = "launcher-test-" + uuid.uuid4().hex


@dataclass
class Launch:
    process: "subprocess.Popen[str]"
    data_dir: Path
    ports: dict[str, int]
    started: float
    output: list[str] = field(default_factory=list)
    children: dict[str, int] = field(default_factory=dict)
    postmaster: int | None = None

    def log(self, last: int = 60) -> str:
        return "\n".join(self.output[-last:])

    def said(self, text: str) -> bool:
        return any(text in line for line in self.output)

    @property
    def shop(self) -> str:
        return f"http://127.0.0.1:{self.ports['storefront']}"


@dataclass
class Ports:
    services: dict[str, int]
    postgres: int

    @property
    def all(self) -> list[int]:
        return [*self.services.values(), self.postgres]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's basetemp: other pytest sessions on the machine prune old basetemps (and reset their root to
    0700, which PostgreSQL's unprivileged user cannot cross) while a launch runs."""
    with tempfile.TemporaryDirectory(prefix="shop-run-test-") as root:
        yield Path(root) / "data"


@pytest.fixture
def ports() -> Ports:
    """Free ports below the kernel's ephemeral range (32768 and up on Linux), so no outgoing connection of another
    process can take one between this choice and the launch."""
    chosen: list[int] = []
    while len(chosen) < len(SERVICES) + 1:
        port = random.randrange(20_000, 32_000)
        if port not in chosen and bindable(port):
            chosen.append(port)
    *services, postgres = chosen
    return Ports(dict(zip(SERVICES, services, strict=True)), postgres)


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def without_credentials() -> dict[str, str]:
    """This environment without the test session's credentials: the launcher (and the drill) use the file's."""
    return {name: value for name, value in os.environ.items() if name not in NAMES}


def launcher_env(data_dir: Path, ports: Ports) -> dict[str, str]:
    env = {
        name: value
        for name, value in without_credentials().items()
        if name not in {"POSTGRES_ADMIN_URL", "USERS_JWT_PRIVATE_KEY", "DATABASE_URL"}
    }
    env |= {f"SHOP_{name.upper()}_PORT": str(port) for name, port in ports.services.items()}
    env |= {
        "SHOP_DATA_DIR": str(data_dir),
        "SHOP_PG_PORT": str(ports.postgres),
        "CHAOS_ENABLED": "true",
        "CHAOS_TOKEN": CHAOS_TOKEN,
        "PAYMENT_REPLICAS": "1",  # the Deployment's three where a test is about replicas: fewer ports, a lighter launch
    }
    return env


def _collect(stream: "Iterator[str]", lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


@contextlib.contextmanager
def launched(data_dir: Path, ports: Ports, **extra_env: str) -> Iterator[Launch]:
    """The launcher as a child of the test; whatever happens in the test, every process it started is gone after."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "shop_devtools.run"],
        env=launcher_env(data_dir, ports) | extra_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    launch = Launch(process, data_dir, ports.services, started)
    assert process.stdout is not None
    reader = threading.Thread(target=_collect, args=(process.stdout, launch.output), daemon=True)
    reader.start()
    try:
        yield launch
    finally:
        _force_clean_up(launch, ports)
        reader.join(timeout=5)
        process.stdout.close()


def _force_clean_up(launch: Launch, ports: Ports) -> None:
    if launch.process.poll() is None:
        launch.process.send_signal(signal.SIGTERM)
        try:
            launch.process.wait(timeout=STOP_BUDGET)
        except subprocess.TimeoutExpired:
            launch.process.kill()
            launch.process.wait()
    for pid in launch.children.values():
        if is_running(pid):
            os.kill(pid, signal.SIGKILL)
    if (launch.data_dir / "pgdata" / "postmaster.pid").exists():
        with contextlib.suppress(subprocess.CalledProcessError):
            EmbeddedPostgres(launch.data_dir, ports.postgres).stop()


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def services_of(parent: int) -> dict[str, int]:
    """The launcher's children, by service name (`python -m shop_<name>`)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and "-m" in argv:
            found[argv[argv.index("-m") + 1].removeprefix("shop_")] = int(entry.name)
    return found


def environ_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for_products(launch: Launch) -> float:
    """Seconds from the launcher's start until `GET /api/products` through storefront answers 200."""
    with httpx.Client(timeout=2, trust_env=False) as client:
        while time.monotonic() - launch.started < COLD_START_BUDGET:
            assert launch.process.poll() is None, f"the launcher exited early:\n{launch.log()}"
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{launch.shop}/api/products").status_code == 200:
                    elapsed = time.monotonic() - launch.started
                    launch.children = services_of(launch.process.pid)
                    with contextlib.suppress(FileNotFoundError):  # none with POSTGRES_ADMIN_URL
                        pid_file = launch.data_dir / "pgdata" / "postmaster.pid"
                        launch.postmaster = int(pid_file.read_text().split()[0])
                    return elapsed
            time.sleep(0.1)
    pytest.fail(f"no 200 from /api/products within {COLD_START_BUDGET} s:\n{launch.log()}")


def startup_floor() -> float:
    """Seconds this machine needs, now, to import the four services and the provisioning code side by side: the
    part of any warm start that no launcher can avoid (several seconds of CPU each on a slow, shared VM)."""
    modules = [f"shop_{name}.main" for name in SERVICES] + ["shop_devtools.provision"]
    started = time.monotonic()
    importers = [subprocess.Popen([sys.executable, "-c", f"import {module}"]) for module in modules]
    for importer in importers:
        assert importer.wait(timeout=120) == 0
    return time.monotonic() - started


def wait_for_banner(launch: Launch) -> None:
    """Until the launcher has seen every service ready (storefront may serve products before users listens)."""
    deadline = time.monotonic() + COLD_START_BUDGET
    while not launch.said("resilient-shop is running"):
        assert time.monotonic() < deadline, f"no banner within {COLD_START_BUDGET} s:\n{launch.log()}"
        assert launch.process.poll() is None, f"the launcher exited early:\n{launch.log()}"
        time.sleep(0.1)


def wait_for_exit(launch: Launch) -> int:
    try:
        return launch.process.wait(timeout=STOP_BUDGET)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the launcher did not stop within {STOP_BUDGET} s:\n{launch.log()}")


def assert_nothing_left(launch: Launch, ports: Ports, *, postgres_stopped: bool = True) -> None:
    service_ports = [port for port in ports.all if port != ports.postgres or postgres_stopped]

    def left() -> tuple[dict[str, int], list[int]]:
        running = {name: pid for name, pid in launch.children.items() if is_running(pid)}
        return running, [port for port in service_ports if port_open(port)]

    # The kernel may take a moment to reap a killed process and to close its listening socket (seen once in CI:
    # every service gone, one port still accepting right after).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and left() != ({}, []):
        time.sleep(0.1)
    assert left() == ({}, []), launch.log()
    if postgres_stopped:
        assert launch.postmaster is not None
        assert not is_running(launch.postmaster), launch.log()
        assert not (launch.data_dir / "pgdata" / "postmaster.pid").exists()


def test_a_busy_port_is_named_and_nothing_starts(data_dir: Path, ports: Ports) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.services["catalog"]))
        squatter.listen()
        with launched(data_dir, ports) as launch:
            assert wait_for_exit(launch) == 1
            assert not launch.said("started ")
    assert launch.said(f"port {ports.services['catalog']} (catalog) is already in use"), launch.log()
    assert not (data_dir / "pgdata").exists()


def test_cold_and_warm_start_reach_every_service_and_stop_cleanly(data_dir: Path, ports: Ports) -> None:
    with launched(data_dir, ports) as cold:
        cold_seconds = wait_for_products(cold)
        assert set(cold.children) == set(SERVICES), cold.log()
        for name, pid in cold.children.items():
            env = environ_of(pid)
            assert env["CHAOS_ENABLED"] == "true"
            assert env["CHAOS_TOKEN"] == CHAOS_TOKEN
            assert (env["HOST"], env["PORT"]) == ("127.0.0.1", str(ports.services[name]))
            assert ("DATABASE_URL" in env) == (name != "storefront")
        assert (
            environ_of(cold.children["payment"])["PAYMENT_CATALOG_URL"]
            == f"http://127.0.0.1:{ports.services['catalog']}"
        )
        key = environ_of(cold.children["users"])["USERS_JWT_PRIVATE_KEY"]
        assert key == (data_dir / "users-jwt-key.pem").read_text()
        credentials = assert_credentials_kept_and_given(cold)
        wait_for_banner(cold)
        assert_the_operators_door_answers_its_credential(cold, credentials[OPERATOR])
        token = register_and_log_in(cold.shop)
        cold.process.send_signal(signal.SIGTERM)
        assert wait_for_exit(cold) == 0, cold.log()
        assert_nothing_left(cold, ports)

    with launched(data_dir, ports) as warm:
        warm_seconds = wait_for_products(warm)
        assert environ_of(warm.children["users"])["USERS_JWT_PRIVATE_KEY"] == key
        assert assert_credentials_kept_and_given(warm) == credentials, "made once, then kept"
        wait_for_banner(warm)
        with httpx.Client(base_url=warm.shop, trust_env=False, timeout=5) as client:
            me = client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, "the account and the token made before the restart are still valid"
        warm.process.send_signal(signal.SIGINT)  # Ctrl-C
        assert wait_for_exit(warm) == 0, warm.log()
        assert_nothing_left(warm, ports)

    floor = startup_floor()
    print(
        f"\ntime to the first 200 from /api/products: cold {cold_seconds:.1f} s, warm {warm_seconds:.1f} s "
        f"(importing the services side by side takes {floor:.1f} s here)"
    )
    assert cold_seconds < COLD_START_BUDGET
    # 10 s is the acceptance bar on a laptop; where importing the services alone takes longer than that, the
    # launcher must at least add little to what the machine cannot avoid.
    assert warm_seconds < max(WARM_START_BUDGET, WARM_START_SLACK * floor)


def assert_credentials_kept_and_given(launch: Launch) -> dict[str, str]:
    """`<data dir>/credentials.env` holds every credential, only its owner may read it, each service got exactly
    the ones it reads from it, and no value was printed; returns them."""
    path = launch.data_dir / "credentials.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    credentials = read_env_file(path)
    assert set(credentials) == set(NAMES)
    assert len({value for value in credentials.values()}) == len(NAMES)
    for name, pid in launch.children.items():
        given = {key: value for key, value in environ_of(pid).items() if key in NAMES}
        assert given == {key: credentials[key] for key in BY_NAME[name].credentials}, name
    assert not [line for line in launch.output for value in credentials.values() if value in line], "never printed"
    return credentials


def assert_the_operators_door_answers_its_credential(launch: Launch, operator: str) -> None:
    where = f"{OPERATOR} from {launch.data_dir / 'credentials.env'}"
    assert launch.said(where), "the banner says where the operator's credential is"
    with httpx.Client(base_url=launch.shop, trust_env=False, timeout=5) as client:
        assert client.get("/ops/inventory").status_code == 401
        inventory = client.get("/ops/inventory", headers=bearer(operator))
        assert inventory.status_code == 200, inventory.text
        assert len(inventory.json()) >= 20
    assert launch.said(f"recovery  http://localhost:{launch.ports['storefront']}/recovery"), "the page is named"
    with httpx.Client(base_url=launch.shop, trust_env=False, timeout=5) as client:
        login = client.post("/recovery/session", json={"credential": operator})
        assert login.status_code == 204, login.text
        assert client.get("/recovery").status_code == 200


def register_and_log_in(shop: str) -> str:
    email, password = f"launcher-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"
    with httpx.Client(base_url=shop, trust_env=False, timeout=5) as client:
        created = client.post("/api/users", json={"email": email, "password": password, "name": "Launcher Test"})
        assert created.status_code == 201, created.text
        tokens = client.post("/api/tokens", json={"email": email, "password": password})
        assert tokens.status_code == 200, tokens.text
    token: str = tokens.json()["access_token"]
    return token


def test_a_dying_service_is_started_again_while_the_others_serve_and_a_killed_launcher_takes_its_services(
    data_dir: Path, ports: Ports
) -> None:
    with launched(data_dir, ports) as launch:
        wait_for_products(launch)
        wait_for_banner(launch)
        killed = launch.children["payment"]
        os.kill(killed, signal.SIGKILL)
        payment = f"http://127.0.0.1:{ports.services['payment']}"
        with httpx.Client(timeout=2, trust_env=False) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert client.get(f"{launch.shop}/api/products").status_code == 200, "the others go on serving"
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{payment}/ready").status_code == 200 and not is_running(killed):
                        break
                time.sleep(0.2)
            else:
                pytest.fail(f"payment did not come back:\n{launch.log()}")
        assert launch.process.poll() is None, "the shop is still up"
        assert launch.said("payment was killed by SIGKILL; starting it again in 1 s"), launch.log()
        assert launch.said("started payment again"), launch.log()
        launch.children = services_of(launch.process.pid)
        assert launch.children["payment"] != killed
        launch.process.send_signal(signal.SIGTERM)
        assert wait_for_exit(launch) == 0, launch.log()
        assert_nothing_left(launch, ports)

    with launched(data_dir, ports) as orphaned:
        wait_for_products(orphaned)
        wait_for_banner(orphaned)
        orphaned.process.kill()
        orphaned.process.wait()
        # The services die with the launcher (PR_SET_PDEATHSIG); PostgreSQL, detached by pg_ctl, outlives it...
        assert_nothing_left(orphaned, ports, postgres_stopped=False)
        assert orphaned.postmaster is not None
        assert is_running(orphaned.postmaster)

        with launched(
            data_dir, ports
        ) as after:  # ...until the next run stops it (the clean-up of `orphaned` would too)
            wait_for_products(after)
            assert after.said("stopping the PostgreSQL a previous run left behind"), after.log()
            assert not is_running(orphaned.postmaster)
            after.process.send_signal(signal.SIGTERM)
            assert wait_for_exit(after) == 0, after.log()
            assert_nothing_left(after, ports)


def test_an_existing_server_is_used_and_left_running(data_dir: Path, ports: Ports) -> None:
    """...and a credential set in the launcher's environment (rotated by hand) wins over the file's."""
    rotated = f"rotated-by-hand-{uuid.uuid4().hex},{uuid.uuid4().hex}"
    with EmbeddedPostgres(data_dir.parent / "server", ports.postgres, fast_and_unsafe=True) as server:
        with launched(data_dir, ports, POSTGRES_ADMIN_URL=server.admin_url(), OPERATOR_CREDENTIAL=rotated) as launch:
            wait_for_products(launch)
            assert not (data_dir / "pgdata").exists()
            kept = read_env_file(data_dir / "credentials.env")
            for name in ("catalog", "storefront"):
                environ = environ_of(launch.children[name])
                assert environ[OPERATOR] == rotated, name
                assert environ["STOREFRONT_CREDENTIAL"] == kept["STOREFRONT_CREDENTIAL"], name
            assert kept[OPERATOR] != rotated, "the file keeps its own"
            wait_for_banner(launch)
            assert launch.said("OPERATOR_CREDENTIAL from the environment"), launch.log()
            with httpx.Client(base_url=launch.shop, trust_env=False, timeout=5) as client:
                assert client.get("/ops/inventory", headers=bearer(rotated)).status_code == 200
                assert client.get("/ops/inventory", headers=bearer(kept[OPERATOR])).status_code == 401
            assert environ_of(launch.children["catalog"])["DATABASE_URL"] == server.admin_url("catalog").replace(
                "postgres@", "catalog:catalog@"
            )
            launch.process.send_signal(signal.SIGTERM)
            assert wait_for_exit(launch) == 0, launch.log()
            assert_nothing_left(launch, ports, postgres_stopped=False)
        assert port_open(ports.postgres), "the launcher stops only the server it started"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_a_clone_in_a_private_directory_serves_the_shop(data_dir: Path, ports: Ports) -> None:
    """As root, a clone under /root or `mktemp -d`: the PostgreSQL binaries (in the clone's `.venv`) and the data
    (`.data` in the clone) both behind a directory only root may enter."""
    private = data_dir.parent / "private"
    private.mkdir(mode=0o700)
    (private / "bin").symlink_to(find_bin_dir(), target_is_directory=True)
    with launched(private / ".data", ports, PG_BIN_DIR=str(private / "bin")) as launch:
        wait_for_products(launch)
        launch.process.send_signal(signal.SIGTERM)
        assert wait_for_exit(launch) == 0, launch.log()
        assert_nothing_left(launch, ports)


def drill(launch: Launch, fault: str, out: Path, *options: str) -> dict[str, Any]:
    """`make drill FAULT=<fault>` against the launched shop, small and short (`options` change it); its report."""
    argv = [
        *("--url", launch.shop, "--local", "--fault", fault, "--data-dir", str(launch.data_dir)),
        *("--rate", "8", "--browse-rate", "0", "--customers", "4", "--restock", "0"),
        *("--warmup", "3", "--duration", "30", "--cooldown", "3", "--out", str(out), *options),
    ]
    # No credential in its environment: the drill reads the operator's from make run's data directory (--data-dir).
    env = {**without_credentials(), "CHAOS_TOKEN": CHAOS_TOKEN, "KUBECONFIG": str(out / "no-kubeconfig")}
    result = subprocess.run(
        [sys.executable, "-m", "shop_load.drill", *argv], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + launch.log()
    report: dict[str, Any] = json.loads((out / "drill-resilient.json").read_text())
    return report


def payment_replicas(launch: Launch) -> dict[str, int]:
    state = RunState.read(launch.data_dir)
    assert state is not None, f"no run.json in {launch.data_dir}:\n{launch.log()}"
    return {process.name: process.pid for process in state.replicas("payment")}


def test_payment_replicas_a_crash_and_a_rollout_under_the_drill_lose_no_checkout(
    data_dir: Path, ports: Ports, tmp_path: Path
) -> None:
    """PAYMENT_REPLICAS=2: storefront routes to both; a crashed replica is started again while the other takes the
    checkouts; SIGUSR1 replaces both, one at a time. The drill's customers see every checkout answered."""
    if not bindable(ports.services["payment"] + 1) or ports.services["payment"] + 1 in ports.all:
        pytest.skip("the port after payment's is taken here")
    with launched(data_dir, ports, PAYMENT_REPLICAS="2") as launch:
        wait_for_products(launch)
        wait_for_banner(launch)
        first = payment_replicas(launch)
        assert list(first) == ["payment-1", "payment-2"]
        launch.children |= first
        storefront_env = Path(f"/proc/{launch.children['storefront']}/environ").read_bytes().decode().split("\0")
        payment = ports.services["payment"]
        listed = f"STOREFRONT_PAYMENT_URL=http://127.0.0.1:{payment},http://127.0.0.1:{payment + 1}"
        assert listed in storefront_env

        crash = drill(launch, "crash", tmp_path / "crash")
        assert launch.said("payment-1 exited with code 70; starting it again in 1 s"), launch.log()
        after_crash = payment_replicas(launch)
        assert after_crash["payment-1"] != first["payment-1"], "the crashed replica is a new process"
        assert after_crash["payment-2"] == first["payment-2"], "the other one went on serving"
        assert crash["restarts"] == 1
        assert crash["timeline"]["ready_again"] is not None

        rollout = drill(launch, "rollout", tmp_path / "rollout")
        assert launch.said("rollout of payment done"), launch.log()
        after_rollout = payment_replicas(launch)
        assert not set(after_rollout.values()) & set(after_crash.values()), "both replicas were replaced"
        assert rollout["restarts"] == 2
        launch.children |= after_rollout

        for report in (crash, rollout):
            checkouts = report["checkouts"]
            assert checkouts["total"] > 0
            assert checkouts["failed"] == 0, report["checkouts"]
            assert all(result["ok"] for result in report["invariants"]), report["invariants"]
        launch.process.send_signal(signal.SIGTERM)
        assert wait_for_exit(launch) == 0, launch.log()
        assert not (data_dir / "run.json").exists(), "the launcher removes its run.json when it stops"
        assert_nothing_left(launch, ports)


def test_with_its_defaults_make_run_restarts_a_leaking_replica_for_failing_liveness_and_loses_no_checkout(
    data_dir: Path, ports: Ports, tmp_path: Path
) -> None:
    """Three payment replicas, each with its pod's memory budget (no budget set by hand): the leak fails liveness,
    the launcher stops that replica and starts it again, the others take the checkouts meanwhile."""
    payment = ports.services["payment"]
    if not all(bindable(payment + n) and payment + n not in ports.all for n in (1, 2)):
        pytest.skip("the ports after payment's are taken here")
    with launched(data_dir, ports, PAYMENT_REPLICAS="3") as launch:
        wait_for_products(launch)
        wait_for_banner(launch)
        first = payment_replicas(launch)
        assert list(first) == ["payment-1", "payment-2", "payment-3"]
        launch.children |= first
        report = drill(launch, "leak", tmp_path / "leak", "--leak-mb-per-second", "40", "--duration", "45")
        after = RunState.read(data_dir)
        assert after is not None
        replicas = {process.name: process for process in after.replicas("payment")}
        launch.children |= {name: process.pid for name, process in replicas.items()}
    assert launch.said("payment-1: liveness probe failed (GET /healthz failed 3 times"), launch.log()
    assert (replicas["payment-1"].restarts, replicas["payment-1"].last_reason) == (1, "failed liveness")
    assert replicas["payment-1"].pid != first["payment-1"]
    assert [replicas[name].pid for name in ("payment-2", "payment-3")] == [first["payment-2"], first["payment-3"]]
    assert report["restarts"] == 1
    assert "make run started payment-1 again: failed liveness." in report["notes"]
    timeline = report["timeline"]
    assert None not in (timeline["liveness_failed"], timeline["restarted"], timeline["ready_again"]), timeline
    assert timeline["liveness_failed"] < timeline["restarted"] < timeline["ready_again"], timeline
    assert report["checkouts"]["total"] > 0
    assert report["checkouts"]["failed"] == 0, report["checkouts"]
    assert all(result["ok"] for result in report["invariants"]), report["invariants"]


def test_the_sale_burst_against_make_runs_defaults_restarts_no_replica(
    data_dir: Path, ports: Ports, tmp_path: Path
) -> None:
    """Busy is not sick: 128 checkouts at once for the bench's 15 s against three payment replicas, each probed as
    the kubelet would, fail no liveness probe, and nothing is restarted."""
    payment = ports.services["payment"]
    if shutil.which("wrk") is None:
        pytest.skip("no wrk: apt-get install wrk")
    if not all(bindable(payment + n) and payment + n not in ports.all for n in (1, 2)):
        pytest.skip("the ports after payment's are taken here")
    with launched(data_dir, ports, PAYMENT_REPLICAS="3") as launch:
        wait_for_products(launch)
        wait_for_banner(launch)
        before = RunState.read(data_dir)
        operator = bearer(read_env_file(data_dir / "credentials.env")[OPERATOR])
        restocked = httpx.post(f"{launch.shop}/ops/restock", json={"at_least": 100_000}, headers=operator, timeout=30)
        assert restocked.status_code == 200, restocked.text
        argv = ["--only", "sale", "--burst", "128", "--browse-rate", "0", "--make-run", str(data_dir)]
        bench = subprocess.run(
            [sys.executable, "-m", "shop_load.bench", *argv, "--json", str(tmp_path / "bench.json")],
            env=without_credentials(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        after = RunState.read(data_dir)
    assert bench.returncode == 0, bench.stdout[-3000:] + bench.stderr[-3000:] + launch.log()
    burst = json.loads((tmp_path / "bench.json").read_text())["bursts"][0]
    assert burst["captured"] > 0, burst
    assert before is not None
    assert after is not None
    assert [(p.name, p.pid, p.restarts) for p in after.processes] == [(p.name, p.pid, 0) for p in before.processes]
    assert not launch.said("liveness probe failed"), launch.log()


def test_two_leak_drills_in_a_row_both_sell_through_restocking_through_the_operators_door(
    data_dir: Path, ports: Ports, tmp_path: Path
) -> None:
    """The seeded ~1,400 units last the first drill's planned sale (24 checkouts/s for 21 s, with a margin) but not
    what it leaves for the second, which restocks through `POST /ops/restock` (`--restock auto`): both sell with
    stock to spare, the leaking replica is ready again after each, and every invariant holds."""
    sale = ("--rate", "24", "--duration", "15", "--restock", "auto", "--leak-mb-per-second", "40", "--settle", "10")
    with launched(data_dir, ports, MEMORY_BUDGET_BYTES="300000000") as launch:
        wait_for_products(launch)
        wait_for_banner(launch)
        first = drill(launch, "leak", tmp_path / "first", *sale)
        second = drill(launch, "leak", tmp_path / "second", *sale)
        operator = read_env_file(data_dir / "credentials.env")["OPERATOR_CREDENTIAL"]
        inventory = httpx.get(f"{launch.shop}/ops/inventory", headers=bearer(operator), timeout=10).json()
    assert not any("restocked" in note for note in first["notes"]), "the seeded stock lasts the first sale"
    assert any("restocked before the drill" in note for note in second["notes"]), second["notes"]
    for report in (first, second):
        assert report["checkouts"]["total"] > 0
        assert report["checkouts"]["out_of_stock"] == 0, "sold through: no checkout met an empty shelf"
        assert report["timeline"]["unready"] is not None
        assert report["timeline"]["ready_again"] is not None, "the leaking replica is ready again after clearing"
        assert all(result["ok"] for result in report["invariants"]), report["invariants"]
    assert all(row["stock"] > 0 for row in inventory), "stock to spare after both"
