from fastapi import APIRouter, status

from shop_users import service
from shop_users.dependencies import CurrentUser, PasswordsDep
from shop_users.schemas import UserCreate, UserRead
from shopkit import SessionDep, problem_response, problems

router = APIRouter(tags=["users"])


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {
            "links": {
                "LogIn": {
                    "operationId": "create_token",
                    "requestBody": {"email": "$request.body#/email", "password": "$request.body#/password"},
                }
            }
        },
        409: problem_response(409, "The email is already registered"),
    },
)
async def register(body: UserCreate, session: SessionDep, passwords: PasswordsDep) -> UserRead:
    return UserRead.model_validate(await service.register(session, passwords, body))


@router.get("/users/me", responses=problems(401))
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
