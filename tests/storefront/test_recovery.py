"""The recovery page's door: only the operator's session opens the page, its data and its fault buttons; the
credential is typed once and lives on only as an HttpOnly, SameSite=Strict cookie that proves it."""

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from shop_storefront.main import create_app
from shop_storefront.recovery import session
from shop_storefront.settings import StorefrontSettings
from tests.conftest import AS_OPERATOR, AS_PAYMENT, AS_STOREFRONT, CREDENTIALS
from tests.storefront.conftest import storefront_client

OPERATOR = CREDENTIALS["OPERATOR_CREDENTIAL"]
DATA = [("GET", "/recovery/state"), ("POST", "/ops/chaos/payment/leak")]


@pytest.fixture
async def storefront() -> AsyncIterator[httpx.AsyncClient]:
    async with storefront_client(chaos_token=SecretStr("recovery-test-chaos-token")) as client:
        yield client


async def log_in(storefront: httpx.AsyncClient, credential: str = OPERATOR) -> httpx.Response:
    return await storefront.post("/recovery/session", json={"credential": credential})


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, AS_PAYMENT, AS_STOREFRONT, {"Cookie": "shop_recovery=1.abc"}],
    ids=["anonymous", "garbage", "payment", "storefront", "forged-cookie"],
)
async def test_without_the_operators_session_the_page_sends_to_the_login_and_its_data_is_refused(
    storefront: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    page = await storefront.get("/recovery", headers=headers)
    assert (page.status_code, page.headers["location"]) == (303, "/recovery/login")
    for method, path in DATA:
        refused = await storefront.request(method, path, headers=headers)
        assert refused.status_code == 401, (path, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"


async def test_a_customers_token_is_no_operator(storefront: httpx.AsyncClient) -> None:
    """A customer's JWT, well formed and signed, proves nothing here (the storefront never verifies it: it is not
    one of the shop's credentials)."""
    customer = {"Authorization": "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}
    assert (await storefront.get("/recovery/state", headers=customer)).status_code == 401
    assert (await storefront.post("/ops/chaos/payment/leak", headers=customer)).status_code == 401


async def test_the_operator_logs_in_once_and_the_cookie_opens_page_data_and_nothing_leaks(
    storefront: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    form = await storefront.get("/recovery/login")
    assert form.status_code == 200
    assert "default-src 'none'" in form.headers["content-security-policy"]

    logged_in = await log_in(storefront)

    assert logged_in.status_code == 204
    cookie = logged_in.headers["set-cookie"]
    assert cookie.startswith(f"{session.COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", f"Max-Age={session.LIFETIME_SECONDS}"):
        assert attribute.lower() in cookie.lower(), cookie
    assert OPERATOR not in cookie
    page = await storefront.get("/recovery")
    assert page.status_code == 200
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    state = await storefront.get("/recovery/state")
    assert state.status_code == 200
    assert state.headers["cache-control"] == "no-store"
    assert {"target", "replicas", "checkouts", "timeline", "database"} <= state.json().keys()
    assert OPERATOR not in caplog.text + "".join(capsys.readouterr())

    assert (await storefront.delete("/recovery/session")).status_code == 204
    assert (await storefront.get("/recovery/state")).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"credential": "wrong-but-long-enough-0123456789"},
        {"credential": OPERATOR + "\x00"},
        {"credential": "x" * 513},
        {"credential": ""},
        {"credential": 10**30},
        {"credential": OPERATOR, "extra": 1},
        {},
    ],
    ids=["wrong", "nul", "over-long", "empty", "huge-number", "extra-field", "missing"],
)
async def test_a_bad_login_is_a_clear_4xx_and_sets_no_cookie(storefront: httpx.AsyncClient, body: object) -> None:
    refused = await storefront.post("/recovery/session", json=body)
    assert refused.status_code in (401, 422), refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in refused.headers
    assert (await storefront.get("/recovery/state")).status_code == 401


async def test_a_login_body_that_is_not_utf8_json_is_refused(storefront: httpx.AsyncClient) -> None:
    for content in (b'{"credential": "\xff\xfe"}', b"credential=x", b"\x00" * 64):
        refused = await storefront.post(
            "/recovery/session", content=content, headers={"content-type": "application/json"}
        )
        assert 400 <= refused.status_code < 500
        assert "set-cookie" not in refused.headers


async def test_faults_go_only_to_a_replica_the_page_lists_and_need_the_chaos_token(
    storefront: httpx.AsyncClient,
) -> None:
    """The caller names a replica, never an address: an unknown one (or one spelled as a URL) is 404."""
    for name in ("payment-9", "http:%2F%2F169.254.169.254", "payment@10.0.0.1"):
        missing = await storefront.post(f"/ops/chaos/{name}/leak", headers=AS_OPERATOR)
        assert missing.status_code == 404, missing.text
    unknown_action = await storefront.post("/ops/chaos/payment/explode", headers=AS_OPERATOR)
    assert unknown_action.status_code == 422
    async with storefront_client() as without_token:
        refused = await without_token.post("/ops/chaos/payment/leak", headers=AS_OPERATOR)
    assert refused.status_code == 409
    assert "CHAOS_TOKEN" in refused.json()["detail"]


async def test_the_page_is_not_public_api(storefront: httpx.AsyncClient) -> None:
    """Hidden from the storefront's own document (the published one is the public API's, built from the services')
    and not routed under `/api`."""
    paths = create_app(StorefrontSettings()).openapi()["paths"]
    assert not [path for path in paths if path.startswith(("/recovery", "/ops"))]
    assert (await storefront.get("/api/recovery/state")).status_code == 404


def test_a_session_is_bound_to_the_credential_and_to_its_expiry() -> None:
    old, new = SecretStr("old-credential-0123456789"), SecretStr("new-credential-0123456789")
    value = session.issue(old, now=lambda: 1_000_000.0)
    assert session.valid(value, (old,), now=lambda: 1_000_000.0)
    assert session.valid(value, (new, old), now=lambda: 1_000_000.0), "accepted during a rotation"
    assert not session.valid(value, (new,), now=lambda: 1_000_000.0), "ended once the old credential is dropped"
    assert not session.valid(value, (old,), now=lambda: 1_000_000.0 + session.LIFETIME_SECONDS + 1)
    expires, _, mac = value.partition(".")
    assert not session.valid(f"{int(expires) + 3600}.{mac}", (old,), now=lambda: 1_000_000.0), "expiry is signed"
    for garbage in (None, "", ".", "abc.def", "9" * 40 + "." + mac):
        assert not session.valid(garbage, (old,), now=lambda: 1_000_000.0)
