"""Users signs tokens for the issuer and audience payment checks: both default to the contracts' names."""

from pathlib import Path

import jwt
import yaml

from shop_contracts import JWT_AUDIENCE, JWT_ISSUER
from shop_payment.settings import PaymentSettings
from shop_users.settings import UsersSettings
from tests.conftest import Shop, register_and_login

KUSTOMIZATION = Path(__file__).resolve().parents[2] / "k8s" / "base" / "kustomization.yaml"


def test_users_and_payment_default_to_the_same_issuer_and_audience() -> None:
    users, payment = UsersSettings(), PaymentSettings()
    assert (users.jwt_issuer, users.jwt_audience) == (JWT_ISSUER, JWT_AUDIENCE)
    assert (payment.jwt_issuer, payment.jwt_audience) == (JWT_ISSUER, JWT_AUDIENCE)
    assert (JWT_ISSUER, JWT_AUDIENCE) == ("resilient-shop-users", "resilient-shop")


async def test_a_token_users_signs_names_the_contracts_issuer_and_audience(shop: Shop) -> None:
    token = (await register_and_login(shop.users))["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == (JWT_ISSUER, JWT_AUDIENCE)


def test_the_manifests_set_both_services_to_the_same_names() -> None:
    generators = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))["configMapGenerator"]
    literals = dict(literal.split("=", 1) for generator in generators for literal in generator.get("literals", []))
    for service in ("USERS", "PAYMENT"):
        assert literals.get(f"{service}_JWT_ISSUER", JWT_ISSUER) == JWT_ISSUER
        assert literals.get(f"{service}_JWT_AUDIENCE", JWT_AUDIENCE) == JWT_AUDIENCE
