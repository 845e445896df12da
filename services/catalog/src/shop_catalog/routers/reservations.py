import uuid
from datetime import timedelta

from fastapi import APIRouter, Depends, Response, status

from shop_catalog import service
from shop_catalog.dependencies import PaymentCaller, SettingsDep
from shop_catalog.schemas import ReservationCreate, ReservationRead
from shopkit import AutocommitConnectionDep, IdempotencyKey, SessionDep, TransactionDep, problems


async def _payment_only(_caller: PaymentCaller) -> None:
    """Every reservation operation is payment's: anyone else is refused before the body is read."""


router = APIRouter(
    prefix="/reservations",
    tags=["reservations"],
    dependencies=[Depends(_payment_only)],
    responses=problems(401, 403),
)


_RESERVATION = {"reservation_id": "$response.body#/id"}
CREATED_LINKS = {
    "links": {
        "GetReservation": {"operationId": "get_reservation", "parameters": _RESERVATION},
        "CommitReservation": {"operationId": "commit_reservation", "parameters": _RESERVATION},
        "ReleaseReservation": {"operationId": "release_reservation", "parameters": _RESERVATION},
    }
}
"""What a client (or a stateful fuzzer) can do next with the reservation it made."""


@router.post("", status_code=status.HTTP_201_CREATED, responses={201: CREATED_LINKS, **problems(409)})
async def create_reservation(
    body: ReservationCreate,
    key: IdempotencyKey,
    connection: TransactionDep,
    settings: SettingsDep,
    response: Response,
) -> ReservationRead:
    result = await service.reserve(
        connection, key=key, items=body.items, ttl=timedelta(seconds=settings.reservation_ttl_seconds)
    )
    if not result.created:
        response.headers["Idempotent-Replayed"] = "true"
    return result.reservation


@router.get("/{reservation_id}", operation_id="get_reservation", responses=problems(404))
async def get_reservation(reservation_id: uuid.UUID, connection: AutocommitConnectionDep) -> ReservationRead:
    return await service.read_reservation(connection, reservation_id)


@router.post("/{reservation_id}/commit", operation_id="commit_reservation", responses=problems(404, 409))
async def commit_reservation(reservation_id: uuid.UUID, connection: AutocommitConnectionDep) -> ReservationRead:
    return await service.commit(connection, reservation_id)


@router.post("/{reservation_id}/release", operation_id="release_reservation", responses=problems(404, 409))
async def release_reservation(reservation_id: uuid.UUID, session: SessionDep) -> ReservationRead:
    return ReservationRead.model_validate(await service.release(session, reservation_id))
