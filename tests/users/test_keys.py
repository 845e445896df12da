import base64

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_users.main import create_app
from shop_users.security import public_jwk
from shop_users.settings import UsersSettings
from tests.conftest import client_for, running
from tests.users.helpers import login, register


def test_jwk_kid_is_the_rfc_7638_thumbprint() -> None:
    """The Ed25519 example key of RFC 8037 (appendix A.1) and its thumbprint (A.3)."""
    d = base64.urlsafe_b64decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")

    jwk = public_jwk(Ed25519PrivateKey.from_private_bytes(d).public_key())

    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        "alg": "EdDSA",
        "use": "sig",
    }


async def test_replicas_with_the_configured_key_accept_each_others_tokens(database_url: str) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings = UsersSettings(database_url=database_url, jwt_private_key=pem.decode())
    first, second = create_app(settings), create_app(settings)

    async with running(first), running(second), client_for(first, "a") as a, client_for(second, "b") as b:
        assert (await register(a)).status_code == 201
        token = await login(a)

        me = await b.get("/users/me", headers={"Authorization": f"Bearer {token}"})
        jwks_a, jwks_b = (await a.get("/.well-known/jwks.json")).json(), (await b.get("/.well-known/jwks.json")).json()

    assert me.status_code == 200
    assert jwks_a == jwks_b


async def test_ready_once_migrated(users: httpx.AsyncClient) -> None:
    response = await users.get("/ready")

    assert response.status_code == 200, response.text
