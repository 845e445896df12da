import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from shop_payment.dependencies import CurrentUser, PaymentsDep
from shop_payment.exceptions import PaymentDeclined
from shop_payment.models import PaymentStatus
from shop_payment.schemas import PaymentCreate, PaymentPage, PaymentRead
from shopkit import IdempotencyKey, problem_response, problems

router = APIRouter(prefix="/payments", tags=["payments"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {
            "links": {"GetPayment": {"operationId": "get_payment", "parameters": {"payment_id": "$response.body#/id"}}}
        },
        402: problem_response(402, "Card declined; the payment is stored as declined and its stock released"),
        **problems(401, 409),
    },
)
async def create_payment(
    body: PaymentCreate, key: IdempotencyKey, user: CurrentUser, payments: PaymentsDep
) -> PaymentRead:
    payment = PaymentRead.model_validate(await payments.create(user.user_id, key, body))
    if payment.status == PaymentStatus.DECLINED:
        raise PaymentDeclined(
            f"The card ending in {payment.card_last4} was declined.", payment=payment.model_dump(mode="json")
        )
    return payment


@router.get("/{payment_id}", operation_id="get_payment", responses=problems(401, 404))
async def get_payment(payment_id: uuid.UUID, user: CurrentUser, payments: PaymentsDep) -> PaymentRead:
    return PaymentRead.model_validate(await payments.get(user.user_id, payment_id))


@router.get("", responses=problems(401))
async def list_payments(
    user: CurrentUser,
    payments: PaymentsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PaymentPage:
    rows, total = await payments.list(user.user_id, limit=limit, offset=offset)
    return PaymentPage(items=[PaymentRead.model_validate(p) for p in rows], total=total)
