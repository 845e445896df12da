import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import psycopg
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_users.security import TokenKeys
from tests.users.helpers import PASSWORD, assert_problem, fetch_users, login, register


@pytest.fixture
async def user_id(users: httpx.AsyncClient) -> str:
    response = await register(users)
    assert response.status_code == 201
    user_id: str = response.json()["id"]
    return user_id


async def test_login_token_verifies_against_the_published_jwks(users: httpx.AsyncClient, user_id: str) -> None:
    response = await users.post("/tokens", json={"email": "ADA@example.com", "password": "correct horse"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600

    jwks = await users.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert "max-age=300" in jwks.headers["cache-control"]
    [jwk] = jwks.json()["keys"]
    assert {k: jwk[k] for k in ("kty", "crv", "alg", "use")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
    }
    key = jwt.PyJWK(jwk)
    token = body["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"] == key.key_id
    claims = jwt.decode(token, key, algorithms=["EdDSA"], audience="resilient-shop", issuer="resilient-shop-users")
    assert claims["sub"] == user_id
    assert claims["email"] == "ada@example.com"
    assert claims["exp"] - claims["iat"] == 3600


async def test_unknown_email_and_wrong_password_get_the_same_401(users: httpx.AsyncClient, user_id: str) -> None:
    wrong_password = await users.post("/tokens", json={"email": "ada@example.com", "password": "wrong horse"})
    unknown_email = await users.post("/tokens", json={"email": "bob@example.com", "password": "correct horse"})
    malformed_email = await users.post("/tokens", json={"email": "bob", "password": "correct horse"})

    body = assert_problem(wrong_password, 401)
    assert body["title"] == "Invalid credentials"
    for other in (unknown_email, malformed_email):
        assert other.status_code == 401
        assert other.json() == body
        assert other.headers["www-authenticate"] == wrong_password.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "payload",
    [{}, {"email": "ada@example.com"}, {"email": "ada@example.com", "password": 12345678}, {"password": "x"}],
)
async def test_login_with_a_wrong_shape_is_422(users: httpx.AsyncClient, payload: dict[str, object]) -> None:
    assert_problem(await users.post("/tokens", json=payload), 422)


async def test_me_returns_the_token_owner(users: httpx.AsyncClient, user_id: str) -> None:
    token = await login(users)

    response = await users.get("/users/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["id"] == user_id
    assert set(response.json()) == {"id", "email", "name", "created_at"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic YWRhOmNvcnJlY3QgaG9yc2U="}, {"Authorization": ""}])
async def test_me_without_a_token_is_401(users: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await users.get("/users/me", headers=headers)

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def _forge(keys: TokenKeys, user_id: str, case: str) -> str:
    uid = uuid.UUID(user_id)
    now = datetime.now(UTC)
    other = TokenKeys(Ed25519PrivateKey.generate(), keys.issuer, keys.audience, keys.ttl_seconds)
    claims = {"sub": user_id, "email": "ada@example.com", "iss": keys.issuer, "aud": keys.audience}
    match case:
        case "garbage":
            return "not-a-jwt"
        case "expired":
            return keys.issue(uid, "ada@example.com", now=now - timedelta(seconds=keys.ttl_seconds + 5))
        case "other_key":
            return other.issue(uid, "ada@example.com")
        case "wrong_audience":
            wrong = TokenKeys(keys.private_key, keys.issuer, "someone-else", keys.ttl_seconds)
            return wrong.issue(uid, "ada@example.com")
        case "unknown_user":
            return keys.issue(uuid.uuid4(), "ghost@example.com")
        case "unsigned":
            return jwt.encode({**claims, "iat": now, "exp": now + timedelta(hours=1)}, "", algorithm="none")
        case "tampered":
            header, payload, signature = keys.issue(uid, "ada@example.com").split(".")
            return f"{header}.{payload}.{signature[:-4]}AAAA"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case", ["garbage", "expired", "other_key", "wrong_audience", "unknown_user", "unsigned", "tampered"]
)
async def test_me_with_a_bad_token_is_401(users: httpx.AsyncClient, keys: TokenKeys, user_id: str, case: str) -> None:
    response = await users.get("/users/me", headers={"Authorization": f"Bearer {_forge(keys, user_id, case)}"})

    body = assert_problem(response, 401)
    assert str(body["type"]).endswith("/invalid-token")
    assert "Traceback" not in response.text


async def test_login_upgrades_a_hash_made_with_weaker_parameters(
    users: httpx.AsyncClient, user_id: str, database_url: str
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("UPDATE users SET password_hash = %s", (weak,))

    await login(users)

    [row] = await fetch_users(database_url)
    assert row["password_hash"] != weak
    assert not PasswordHasher().check_needs_rehash(str(row["password_hash"]))
