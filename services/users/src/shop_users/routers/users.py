from fastapi import APIRouter, status

from shop_users import service
from shop_users.dependencies import CurrentUser, PasswordsDep
from shop_users.schemas import UserCreate, UserRead
from shopkit import SessionDep

router = APIRouter(tags=["users"])


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The email is already registered"}, 422: {"description": "Invalid input"}},
)
async def register(body: UserCreate, session: SessionDep, passwords: PasswordsDep) -> UserRead:
    return UserRead.model_validate(await service.register(session, passwords, body))


@router.get("/users/me", responses={401: {"description": "Missing, invalid or expired token"}})
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
