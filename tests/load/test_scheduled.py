"""What the drill needs to run unattended against a live shop (the scheduled drill): the stop condition on the
checkouts' success share, the sale's purchases put back into stock through `/ops/` (the services and PostgreSQL
for real), the verdict pushed to a Pushgateway (a small HTTP server on a free port records what arrives), and the
three together in a drill against the shop as real processes."""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shop_devtools.credentials import OPERATOR
from shop_load.core import ops, stock
from shop_load.core.drill_args import parse_args
from shop_load.core.records import Checkout
from shop_load.drill import run, scheduled
from tests.conftest import AS_OPERATOR, CREDENTIALS, Shop
from tests.load.conftest import CHAOS_TOKEN, RealShop, run_python
from tests.payment.test_payments import APPROVED


def ended(t: float, outcome: str) -> Checkout:
    return Checkout(key=f"k-{uuid.uuid4()}", customer=0, body={}, t=t - 1, outcome=outcome, finished=t)


def test_the_success_share_is_of_the_checkouts_that_ended_in_the_window() -> None:
    checkouts = [ended(t, "captured") for t in (1, 2, 3, 4, 5, 6)]
    assert scheduled.success_share(checkouts, now=6) == 1.0
    checkouts += [ended(t, "failed") for t in (12, 13)] + [ended(14, "declined"), ended(15, "out_of_stock")]
    assert scheduled.success_share(checkouts, now=16) is None, "4 ended in the last 10 s: too few to tell"
    checkouts += [ended(15.5, "failed"), ended(16, "rejected")]
    assert scheduled.success_share(checkouts, now=16) == pytest.approx(2 / 6), "declined and sold out are answers"
    still_trying = Checkout(key="k-open", customer=1, body={}, t=10)
    assert scheduled.success_share([*checkouts, still_trying], now=16) == pytest.approx(2 / 6), "not ended: not counted"
    assert scheduled.success_share(checkouts, now=40) is None, "nothing ended lately"


def test_the_stop_condition_trips_once_below_its_threshold_and_says_so() -> None:
    now = [5.0]
    checkouts = [ended(t, "captured") for t in (1, 2, 3, 4, 5)]
    stop = scheduled.StopCondition(0.8, checkouts, lambda: now[0])
    assert not stop.tripped()
    checkouts += [ended(t, "failed") for t in (6, 7, 8)]
    now[0] = 8.0
    assert stop.tripped(), "5 of 8 answered: 62 %, below 80 %"
    assert stop.note == (
        "stopped early at 8.0 s: 62% of the checkouts that ended in the last 10 s were answered, below --stop-below "
        "0.8; the fault was cleared and the sale ended"
    )
    checkouts += [ended(t, "captured") for t in range(9, 40)]
    now[0] = 40.0
    assert stop.tripped(), "once tripped, for good"
    never = scheduled.StopCondition(None, [ended(t, "failed") for t in range(10)], lambda: 9.0)
    assert not never.tripped()
    assert never.note is None


def test_the_options_of_an_unattended_drill() -> None:
    options = parse_args(["--stop-below", "0.8", "--put-back", "--pushgateway", "http://pushgateway.shop.svc:9091"])
    assert (options.stop_below, options.put_back, options.pushgateway) == (
        0.8,
        True,
        "http://pushgateway.shop.svc:9091",
    )
    plain = parse_args([])
    assert (plain.stop_below, plain.put_back, plain.pushgateway) == (None, False, None)
    for share in ("0", "1.5"):
        with pytest.raises(SystemExit):
            parse_args(["--stop-below", share])


async def test_put_back_returns_what_the_sale_bought_and_keeps_what_is_higher(shop: Shop) -> None:
    operator = ops.Operator(CREDENTIALS[OPERATOR], "the test session")
    before = await operator.inventory(shop.storefront)
    by_sku = {row["sku"]: row for row in before}
    bought, raised = sorted(by_sku)[:2], sorted(by_sku)[2]
    customer = f"sale-{uuid.uuid4().hex[:8]}@example.com"
    await shop.storefront.post("/api/users", json={"email": customer, "password": "hopper-1906", "name": "Grace"})
    token = (await shop.storefront.post("/api/tokens", json={"email": customer, "password": "hopper-1906"})).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    for sku in bought:
        body = {"items": [{"sku": sku, "quantity": 2}], "card_number": APPROVED}
        paid = await shop.storefront.post(
            "/api/payments", json=body, headers={**auth, "Idempotency-Key": str(uuid.uuid4())}
        )
        assert paid.status_code == 201, paid.text
    await operator.restock(shop.storefront, int(by_sku[raised]["stock"]) + 50, [raised])  # an operator's, meanwhile

    note = await stock.put_back(shop.storefront, operator, before)
    assert note == "put back: 2 products raised to their stock before the sale (POST /ops/restock)"
    after = {row["sku"]: row for row in await operator.inventory(shop.storefront)}
    for sku, row in by_sku.items():
        expected = int(row["stock"]) + (50 if sku == raised else 0)
        assert int(after[sku]["stock"]) == expected, sku
    assert [int(after[sku]["sold"]) - int(by_sku[sku]["sold"]) for sku in bought] == [2, 2], "what was sold stays sold"

    stranger = ops.Operator("x" * 64, "a guess")
    refused = await stock.put_back(shop.storefront, stranger, before)
    assert refused.startswith("could not put the sale's purchases back through /ops/restock: POST /ops/restock ")


@dataclass
class Pushed:
    method: str
    path: str
    content_type: str
    body: str


@dataclass
class PushgatewayStandIn:
    """Answers every push 200, as the Pushgateway does, and keeps what was pushed."""

    url: str
    pushes: list[Pushed] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        families = text_string_to_metric_families(self.pushes[-1].body)
        return {sample.name: sample.value for family in families for sample in family.samples}


@pytest.fixture
def pushgateway() -> Iterator[PushgatewayStandIn]:
    pushes: list[Pushed] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            pushes.append(Pushed(self.command, self.path, self.headers.get("Content-Type", ""), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield PushgatewayStandIn(f"http://127.0.0.1:{server.server_address[1]}", pushes)
    finally:
        server.shutdown()
        server.server_close()


def test_the_verdict_replaces_the_drills_group_on_the_pushgateway(pushgateway: PushgatewayStandIn) -> None:
    before = time.time()
    scheduled.push_verdict(pushgateway.url, 0)
    scheduled.push_verdict(pushgateway.url, 3)
    assert [(p.method, p.path) for p in pushgateway.pushes] == [("PUT", "/metrics/job/failover-drill")] * 2
    assert pushgateway.pushes[-1].content_type.startswith("text/plain")
    pushed = pushgateway.metrics()
    assert set(pushed) == {
        "shop_drill_last_run_timestamp_seconds",
        "shop_drill_last_success",
        "shop_drill_last_exit_code",
    }
    assert before <= pushed["shop_drill_last_run_timestamp_seconds"] <= time.time()
    assert (pushed["shop_drill_last_success"], pushed["shop_drill_last_exit_code"]) == (0.0, 3.0)


def test_a_drill_that_cannot_run_still_pushes_its_failure(
    pushgateway: PushgatewayStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHAOS_TOKEN", raising=False)
    argv = ["--local", "--data-dir", str(tmp_path), "--pushgateway", pushgateway.url]
    with pytest.raises(SystemExit) as exited:
        run.main(argv)
    assert exited.value.code == 2
    pushed = pushgateway.metrics()
    assert (pushed["shop_drill_last_success"], pushed["shop_drill_last_exit_code"]) == (0.0, 2.0)


def test_a_pushgateway_that_does_not_answer_is_said_and_the_exit_status_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHAOS_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exited:
        run.main(["--local", "--data-dir", str(tmp_path), "--pushgateway", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    assert "shop-drill: could not push the verdict to http://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.process
def test_a_drill_whose_checkouts_fail_stops_early_puts_the_stock_back_and_pushes_its_failure(
    real_shop: RealShop, pushgateway: PushgatewayStandIn, tmp_path: Path
) -> None:
    """payment's event loop hangs for 20 s: the customers give up on their checkouts after 3 s, the stop condition
    trips well before the fault phase's 60 s, the cool-down is skipped, the stock goes back to the sale's start and
    the Pushgateway hears exit status 3."""
    out = tmp_path / "drill-out"
    drill = [
        "-m", "shop_load.drill", "--url", real_shop.storefront.url, "--payment-url", real_shop.payment.url,
        "--fault", "hang", "--hang-seconds", "20", "--duration", "60", "--cooldown", "30",
        "--rate", "8", "--browse-rate", "0", "--customers", "2", "--warmup", "4",
        "--retry-for", "3", "--request-timeout", "2", "--settle", "5", "--restock", "300",
        "--stop-below", "0.8", "--put-back", "--pushgateway", pushgateway.url,
    ]  # fmt: skip
    no_cluster = {"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "KUBERNETES_SERVICE_HOST": ""}
    result = run_python(drill, timeout=180, CHAOS_TOKEN=CHAOS_TOKEN, DRILL_OUT=str(out), **no_cluster)
    assert result.returncode == scheduled.EXIT_STOPPED, result.stdout + result.stderr

    report = json.loads((out / "drill-resilient.json").read_text())
    (stopped,) = [note for note in report["notes"] if note.startswith("stopped early at ")]
    at = float(stopped.split()[3])
    assert report["timeline"]["injected"] < at < report["timeline"]["injected"] + 20, "within the hang"
    assert report["load"]["window_s"][1] < report["timeline"]["injected"] + 20 + 10, "the hang's end, no cool-down"
    assert [(i["name"], i["ok"]) for i in report["invariants"]] == [
        ("answered_payments_stored", True),
        ("one_payment_per_key", True),
        ("stock_conserved", True),
    ]
    assert any(note.startswith("put back: ") for note in report["notes"])
    inventory = httpx.get(real_shop.storefront.url + "/ops/inventory", headers=AS_OPERATOR, timeout=10).json()
    assert all(row["stock"] >= 300 for row in inventory), "every product back to the stock the sale began with"
    pushed = pushgateway.metrics()
    assert (pushed["shop_drill_last_success"], pushed["shop_drill_last_exit_code"]) == (0.0, 3.0)
