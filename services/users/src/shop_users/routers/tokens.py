from fastapi import APIRouter

from shop_users import service
from shop_users.dependencies import KeysDep, LoginThrottleDep, PasswordsDep
from shop_users.schemas import TokenCreate, TokenRead
from shopkit import SessionDep, problem_response

router = APIRouter(tags=["tokens"])


@router.post(
    "/tokens",
    operation_id="create_token",
    responses={
        401: problem_response(401, "Unknown email or wrong password"),
        429: problem_response(429, "Too many failed logins for this email lately: retry after `Retry-After` seconds"),
    },
)
async def create_token(
    body: TokenCreate, session: SessionDep, passwords: PasswordsDep, login_throttle: LoginThrottleDep, keys: KeysDep
) -> TokenRead:
    """Password login: an EdDSA-signed access token, verifiable with `GET /.well-known/jwks.json`.

    After 5 failed logins for one email (by default), its further attempts get `429` with `Retry-After` for a
    while, 1 s at first and doubling with each further failure up to 60 s, whether an account has the email or not.
    """
    user = await service.authenticate(session, passwords, login_throttle, body.email, body.password)
    return TokenRead(access_token=service.issue_token(keys, user), expires_in=keys.ttl_seconds)
