"""Contract fuzzing: schemathesis against every service's OpenAPI document and the storefront's merged one, over
real uvicorn processes on a real database. No server errors, and every answer's status, content type and body as
the document says; the stateful phase follows the documents' links (a reservation to its commit, a payment to its
read, a registration to its login). Bounded: a fixed seed and a few examples per operation."""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from tests.conftest import AS_OPERATOR, AS_PAYMENT
from tests.process.conftest import ServiceProcess

pytestmark = pytest.mark.process

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
EXAMPLES = 15
SEED = 20261129


@pytest.fixture
def token(shop: Mapping[str, ServiceProcess]) -> str:
    account = {"email": "fuzz@example.com", "password": "a long enough password", "name": "Fuzz"}
    assert httpx.post(shop["users"].url + "/users", json=account).status_code == 201
    response = httpx.post(shop["users"].url + "/tokens", json={k: account[k] for k in ("email", "password")})
    token: str = response.json()["access_token"]
    return token


def schemathesis(url: str, authorization: str, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        url + "/openapi.json",
        f"--checks={CHECKS}",
        f"--max-examples={EXAMPLES}",
        f"--seed={SEED}",
        "--generation-deterministic",
        "--no-color",
        f"--header=Authorization: {authorization}",
        "--request-timeout=10",
        f"--report-dir={report}",
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "NO_COLOR": "1"}
    )


@pytest.mark.parametrize(
    ("service", "caller"),
    [
        ("catalog", "payment"),  # the reservations, with their links; inventory and restock are 403 for payment
        ("catalog", "operator"),  # inventory and restock; the reservations are 403 for the operator
        ("users", "customer"),
        ("payment", "customer"),
        ("storefront", "customer"),
    ],
)
def test_every_answer_is_what_the_document_says(
    service: str, caller: str, shop: Mapping[str, ServiceProcess], token: str, tmp_path: Path
) -> None:
    credentials = {"payment": AS_PAYMENT, "operator": AS_OPERATOR, "customer": {"Authorization": f"Bearer {token}"}}
    run = schemathesis(shop[service].url, credentials[caller]["Authorization"], tmp_path)
    summary = run.stdout[run.stdout.find("=== SUMMARY") :] if "=== SUMMARY" in run.stdout else run.stdout[-3000:]
    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-2000:]
    assert "✅ Stateful" in summary, "the stateful phase ran: the document links its operations\n" + summary


def one_unit_checkout(shop: Mapping[str, ServiceProcess]) -> dict[str, object]:
    sku = httpx.get(shop["catalog"].url + "/products").json()["items"][0]["sku"]
    return {"items": [{"sku": sku, "quantity": 1}], "card_number": "4242424242424242"}


def raw_checkout(
    shop: Mapping[str, ServiceProcess], token: str, checkout: Mapping[str, object], *, idempotency_key: bytes
) -> bytes:
    """`POST /api/payments` at the storefront over a bare socket, so the key's bytes arrive exactly as given (an HTTP
    client would refuse or trim them); the whole answer, as received."""
    body = json.dumps(checkout).encode()
    head = (
        b"POST /api/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nIdempotency-Key: " + idempotency_key + b"\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", shop["storefront"].port), timeout=10) as connection:
        connection.sendall(head + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_header_values_reach_the_service_without_surrounding_whitespace(
    shop: Mapping[str, ServiceProcess], token: str
) -> None:
    """uvicorn keeps a trailing space in a value; h11 (under httpx) refuses to send one, so the gateway answered
    502 to `Idempotency-Key: 3v ` (found by schemathesis). It passes the value on trimmed (RFC 9110)."""
    checkout = one_unit_checkout(shop)
    answer = raw_checkout(shop, token, checkout, idempotency_key=b"3v ")
    assert answer.startswith(b"HTTP/1.1 201 "), answer
    paid = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    again = httpx.post(
        shop["payment"].url + "/payments",
        json=checkout,
        headers={"Idempotency-Key": "3v", "Authorization": f"Bearer {token}"},
    )
    assert again.json()["id"] == paid["id"], "the same payment, under the trimmed key"


def test_a_header_value_the_gateway_cannot_pass_on_unchanged_is_a_400_problem_and_pays_nothing(
    shop: Mapping[str, ServiceProcess], token: str
) -> None:
    """Over a real connection the gateway's client (aiohttp's wire) sends header values byte for byte only when they
    are visible ASCII: a Latin-1 Idempotency-Key is refused at the gateway, with a problem, before payment sees it."""
    mine = {"Authorization": f"Bearer {token}"}
    before = httpx.get(shop["payment"].url + "/payments", headers=mine).json()["total"]
    answer = raw_checkout(shop, token, one_unit_checkout(shop), idempotency_key=b"cl\xe9")
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"application/problem+json" in answer.split(b"\r\n\r\n", 1)[0].lower()
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["type"].endswith("/malformed-header")
    assert httpx.get(shop["payment"].url + "/payments", headers=mine).json()["total"] == before
