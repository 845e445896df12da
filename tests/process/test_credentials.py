"""The shop's credentials over real processes: the operator restocks through the storefront, a customer pays
(payment presenting its credential to catalog), strangers are refused, and no credential, password or token ever
appears in a log line."""

import json
from collections.abc import Mapping

import httpx
import pytest

from tests.conftest import AS_OPERATOR, CREDENTIALS
from tests.process.conftest import ServiceProcess

pytestmark = pytest.mark.process

SKU = "CH-MESH-06"


def test_credentials_work_across_processes_and_never_reach_a_log(shop: Mapping[str, ServiceProcess]) -> None:
    storefront, catalog = shop["storefront"].url, shop["catalog"].url
    account = {"email": "logs@example.com", "password": "a password nobody logs", "name": "Logs"}
    with httpx.Client(timeout=10) as client:
        restocked = client.post(f"{storefront}/ops/restock", json={"at_least": 500, "skus": [SKU]}, headers=AS_OPERATOR)
        assert restocked.status_code == 200, restocked.text
        assert client.post(f"{storefront}/ops/restock", json={"at_least": 900}).status_code == 401
        assert client.post(f"{storefront}/api/users", json=account).status_code == 201
        token = client.post(f"{storefront}/api/tokens", json={k: account[k] for k in ("email", "password")})
        customer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert client.get(f"{catalog}/inventory", headers=customer).status_code == 401
        paid = client.post(
            f"{storefront}/api/payments",
            json={"items": [{"sku": SKU, "quantity": 2}], "card_number": "4242424242424242"},
            headers={"Idempotency-Key": "logs-1", **customer},
        )
        assert paid.status_code == 201, paid.text
        rows = client.get(f"{storefront}/ops/inventory", headers=AS_OPERATOR).json()
    assert next(row for row in rows if row["sku"] == SKU) == {"sku": SKU, "stock": 498, "held": 0, "sold": 2}

    for service in shop.values():
        service.stop()
    lines = [line for service in shop.values() for line in service.log_path.read_text().splitlines()]
    secrets = [*CREDENTIALS.values(), account["password"], token.json()["access_token"]]
    for line in lines:
        for secret in secrets:
            assert secret not in line, f"a secret in a log line: {line[:120]}"
    audit = [json.loads(line) for line in lines if '"stock_restocked"' in line]
    assert [(entry["caller"], entry["at_least"], entry["skus"]) for entry in audit] == [("storefront", 500, [SKU])]
