import uuid
from datetime import timedelta

from fastapi import APIRouter, Response, status

from shop_catalog import service
from shop_catalog.dependencies import SettingsDep
from shop_catalog.schemas import ReservationCreate, ReservationRead
from shopkit import AutocommitSessionDep, IdempotencyKey, SessionDep, problems

router = APIRouter(prefix="/reservations", tags=["reservations"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_reservation(
    body: ReservationCreate, key: IdempotencyKey, session: SessionDep, settings: SettingsDep, response: Response
) -> ReservationRead:
    result = await service.reserve(
        session, key=key, items=body.items, ttl=timedelta(seconds=settings.reservation_ttl_seconds)
    )
    if not result.created:
        response.headers["Idempotent-Replayed"] = "true"
    return ReservationRead.model_validate(result.reservation)


@router.get("/{reservation_id}", responses=problems(404))
async def get_reservation(reservation_id: uuid.UUID, session: SessionDep) -> ReservationRead:
    return ReservationRead.model_validate(await service.get_reservation(session, reservation_id))


@router.post("/{reservation_id}/commit", responses=problems(404, 409))
async def commit_reservation(reservation_id: uuid.UUID, session: AutocommitSessionDep) -> ReservationRead:
    return ReservationRead.model_validate(await service.commit(session, reservation_id))


@router.post("/{reservation_id}/release", responses=problems(404, 409))
async def release_reservation(reservation_id: uuid.UUID, session: SessionDep) -> ReservationRead:
    return ReservationRead.model_validate(await service.release(session, reservation_id))
