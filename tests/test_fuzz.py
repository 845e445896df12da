"""Fuzzing with schemathesis over every service's own OpenAPI document and the storefront's merged one, with the
credential each operation asks for (payment's for reservations, the operator's for inventory and restock, a
customer's token for payments and `/users/me`), so the internal handlers are really exercised, not just refused.

Two passes per document. Every operation alone, as schemathesis' command line tries it: the document's examples,
the boundaries of each parameter (its coverage phase), then valid and invalid data at random. Then the stateful
phase, with valid data, following the documents' links (a reservation to its read, commit and release, a
registration to its login, a payment to its read). Every answer must be a non-5xx, every 4xx a problem+json.
Bounded and deterministic (derandomized, a fixed seed, `EXAMPLES` per operation): about a minute on two cores.
What random generation meets only by luck (a NUL, invalid UTF-8, raw bytes) is `tests/test_hostile_input.py`'s.

The shop is the four apps wired in-process (`tests.conftest.open_shop`), served by uvicorn on loopback sockets from
a thread with its own event loop, so schemathesis talks HTTP to a real server and the suite starts no process.
Operations are driven with schemathesis' own test builder, the one its pytest plugin uses: the plugin's lazy
loader (`schemathesis.pytest.from_fixture`) fails under pytest 9 (`'Function' object has no attribute '_nodeid'`),
and the documents exist only once the shop runs.
"""

import asyncio
import itertools
import re
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import uvicorn
from schemathesis import APIOperation, Case, CheckContext, CheckFunction, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test
from schemathesis.generation.stateful import run_state_machine_as_test

from shop_devtools.pg import EmbeddedPostgres
from tests.conftest import AS_OPERATOR, AS_PAYMENT, ClonedDatabases, open_shop

SERVICES = ("catalog", "users", "payment", "storefront")
Operation = APIOperation[Any, Any, Any, Any]
EXAMPLES = 25
"""Random examples per operation (valid and invalid together), beside its documented examples and boundaries."""
STATEFUL_SCENARIOS = 12
STATEFUL_STEPS = 6
SEED = 20261207
SKU = re.compile(r"[A-Z0-9][A-Z0-9-]*")
REGISTRATIONS = itertools.count(1)

SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(hypothesis.HealthCheck),
)
"""Derandomized: the same examples on every run, so a failure in CI is a failure here."""


class LiveShop:
    """The in-process shop behind uvicorn servers on loopback ports, run by a thread with its own event loop."""

    def __init__(self, databases: ClonedDatabases) -> None:
        self.databases = databases
        self.sockets = {name: socket.create_server(("127.0.0.1", 0)) for name in SERVICES}
        self.urls = {name: f"http://127.0.0.1:{sock.getsockname()[1]}" for name, sock in self.sockets.items()}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-shop", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start() or stop()
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with open_shop(self.databases) as shop:
            servers = {
                name: uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
                for name, app in shop.apps.items()
            }
            tasks = [asyncio.create_task(server.serve([self.sockets[name]])) for name, server in servers.items()]
            while not all(server.started for server in servers.values()):
                if any(task.done() for task in tasks):
                    await asyncio.gather(*tasks)
                    raise RuntimeError("a server stopped before it started")
                await asyncio.sleep(0.01)
            self._ready.set()
            await self._stop.wait()
            for server in servers.values():
                server.should_exit = True
            await asyncio.gather(*tasks)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=60) or self._failure is not None:
            raise RuntimeError("the shop did not start") from self._failure

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        for sock in self.sockets.values():
            sock.close()
        if self._failure is not None:
            raise self._failure


@pytest.fixture(scope="module")
def live_shop(postgres: EmbeddedPostgres, template_urls: dict[str, str]) -> Iterator[Mapping[str, str]]:
    """Service name → base URL of the running shop."""
    databases = ClonedDatabases(postgres)
    shop = LiveShop(databases)
    try:
        shop.start()
        yield shop.urls
    finally:
        try:
            shop.stop()
        finally:
            databases.drop()


@pytest.fixture(scope="module")
def customer(live_shop: Mapping[str, str]) -> dict[str, str]:
    """A registered customer's Authorization header."""
    account = {
        "email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com",
        "password": "a long enough password",
        "name": "Fuzz",
    }
    with httpx.Client(base_url=live_shop["users"], timeout=30) as users:
        assert users.post("/users", json=account).status_code == 201
        token = users.post("/tokens", json={"email": account["email"], "password": account["password"]})
        assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def credential_for(operation: Operation, customer: Mapping[str, str]) -> dict[str, str]:
    """The credential the operation asks for in its document: the shop's own (payment's for reservations, the
    operator's for the rest), a customer's token, or none."""
    schemes = {name for requirement in operation.definition.raw.get("security", []) for name in requirement}
    if "ShopCredential" in schemes:
        return dict(AS_PAYMENT if operation.path.startswith("/reservations") else AS_OPERATOR)
    if schemes:
        return dict(customer)
    return {}


def problem_details(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A 4xx is `application/problem+json` with RFC 9457's members and its own status, and no stack trace."""
    if not 400 <= response.status_code < 500:
        return None
    assert response.headers.get("content-type", [""])[0] == "application/problem+json", response.headers
    problem = response.json()
    assert isinstance(problem, dict), problem
    assert {"type", "title", "status", "detail"} <= problem.keys(), problem
    assert problem["status"] == response.status_code, problem
    assert "Traceback" not in response.text
    return True


CHECKS: list[CheckFunction] = [not_a_server_error, problem_details]


def realistic(case: Case[Any], skus: Sequence[str]) -> None:
    """Where the generated body is well-formed, order lines and restocks name products that exist, a few units at a
    time, and a registration a new e-mail: random SKUs and e-mails are all unknown or invalid, and the links after a
    reservation, a payment or a registration would never be followed."""
    body = case.body
    if not isinstance(body, dict):
        return
    lines = body.get("items")
    if isinstance(lines, list):
        for index, line in enumerate(lines):
            sku = line.get("sku") if isinstance(line, dict) else None
            if isinstance(line, dict) and isinstance(sku, str) and SKU.fullmatch(sku):
                line["sku"] = skus[index % len(skus)]
            quantity = line.get("quantity") if isinstance(line, dict) else None
            if isinstance(line, dict) and isinstance(quantity, int) and 1 <= quantity <= 100:
                line["quantity"] = 1 + quantity % 3
    restocked = body.get("skus")
    if isinstance(restocked, list) and all(isinstance(sku, str) and SKU.fullmatch(sku) for sku in restocked):
        body["skus"] = [skus[index % len(skus)] for index in range(len(restocked))]
    if case.operation.path.endswith("/users") and isinstance(body.get("email"), str):
        body["email"] = f"fuzz-{next(REGISTRATIONS)}@example.com"


def load(live_shop: Mapping[str, str], service: str, *, mode: str = "all") -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": mode,
                "deterministic": True,
                "database": "none",
                "max-examples": EXAMPLES,
            },
            "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
        }
    )
    return schemathesis.openapi.from_url(live_shop[service] + "/openapi.json", config=config)


@pytest.fixture(scope="module")
def skus(live_shop: Mapping[str, str]) -> list[str]:
    products = httpx.get(live_shop["catalog"] + "/products", params={"limit": 100}, timeout=30).json()["items"]
    return [product["sku"] for product in products]


def operations_of(schema: Any) -> list[Operation]:
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert operations, "the document lists operations"
    return operations


Answers = dict[str, set[int]]
"""Operation label → the statuses it answered."""
SUCCESS = set(range(200, 300))


def link_targets(operations: Sequence[Operation]) -> set[str]:
    """The labels of the operations the document's links lead to."""
    by_id = {operation.definition.raw.get("operationId"): operation.label for operation in operations}
    return {
        by_id[link["operationId"]]
        for operation in operations
        for response in operation.definition.raw.get("responses", {}).values()
        for link in response.get("links", {}).values()
        if link.get("operationId") in by_id
    }


def assert_credentials_reached_the_handlers(answers: Answers, operations: Sequence[Operation]) -> None:
    """Every operation that asks for a credential answered something else than "who are you" at least once."""
    for operation in operations:
        if operation.definition.raw.get("security"):
            assert answers.get(operation.label, set()) - {401, 403}, (operation.label, answers.get(operation.label))


def fuzz(operation: Operation, headers: dict[str, str], skus: Sequence[str], answers: Answers) -> None:
    """`operation` as schemathesis' command line tries it: the document's examples, the boundaries of every
    parameter (its coverage phase: empty, too long, NUL, wrong types...), then valid and invalid data at random."""

    def send(case: Case[Any]) -> None:
        realistic(case, skus)
        response = case.call(headers=headers, timeout=30)
        answers.setdefault(operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    config = operation.schema.config
    test = create_test(
        operation=operation,
        test_func=send,
        config=HypothesisTestConfig(
            project=config,
            modes=list(HypothesisTestMode),
            settings=SETTINGS,
            seed=SEED,
        ),
    )
    test()


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_without_a_server_error(
    service: str,
    live_shop: Mapping[str, str],
    customer: dict[str, str],
    skus: list[str],
    subtests: pytest.Subtests,
) -> None:
    operations = operations_of(load(live_shop, service))
    answers: Answers = {}
    for operation in operations:
        with subtests.test(operation.label):
            fuzz(operation, credential_for(operation, customer), skus, answers)
    assert_credentials_reached_the_handlers(answers, operations)


@pytest.mark.parametrize("service", SERVICES)
def test_linked_operations_answer_without_a_server_error(
    service: str, live_shop: Mapping[str, str], customer: dict[str, str], skus: list[str]
) -> None:
    """The stateful phase with valid data only (the invalid is the test above's): a step's answer feeds the next
    through the document's links, so a reservation is read, committed and released, a payment read back."""
    schema = load(live_shop, service, mode="positive")
    answers: Answers = {}

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Case[Any]) -> None:
            realistic(case, skus)

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"headers": credential_for(case.operation, customer), "timeout": 30}

        def after_call(self, response: Response, case: Case[Any]) -> None:
            super().after_call(response, case)
            answers.setdefault(case.operation.label, set()).add(response.status_code)

        def validate_response(self, response: Response, case: Case[Any], **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    run_state_machine_as_test(
        Workflow,
        settings=hypothesis.settings(SETTINGS, max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS),
    )
    linked = link_targets(operations_of(schema))
    assert linked, "the document links its operations"
    followed = {label for label in linked if answers.get(label, set()) & SUCCESS}
    assert followed, f"a link was followed to a success: {answers}"
