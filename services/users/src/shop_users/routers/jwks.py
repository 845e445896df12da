from fastapi import APIRouter, Response

from shop_users.dependencies import KeysDep
from shop_users.schemas import JsonWebKey, JsonWebKeySet

router = APIRouter(tags=["keys"])

CACHE_CONTROL = "public, max-age=300"


@router.get("/.well-known/jwks.json")
async def jwks(keys: KeysDep, response: Response) -> JsonWebKeySet:
    """The public key(s) tokens are signed with, for other services to verify tokens offline."""
    response.headers["Cache-Control"] = CACHE_CONTROL
    return JsonWebKeySet(keys=[JsonWebKey.model_validate(keys.jwk)])
