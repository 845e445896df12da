from fastapi import APIRouter

from shop_users import service
from shop_users.dependencies import KeysDep, PasswordsDep
from shop_users.schemas import TokenCreate, TokenRead
from shopkit import SessionDep, problem_response

router = APIRouter(tags=["tokens"])


@router.post(
    "/tokens", operation_id="create_token", responses={401: problem_response(401, "Unknown email or wrong password")}
)
async def create_token(body: TokenCreate, session: SessionDep, passwords: PasswordsDep, keys: KeysDep) -> TokenRead:
    """Password login: an EdDSA-signed access token, verifiable with `GET /.well-known/jwks.json`."""
    user = await service.authenticate(session, passwords, body.email, body.password)
    return TokenRead(access_token=service.issue_token(keys, user), expires_in=keys.ttl_seconds)
