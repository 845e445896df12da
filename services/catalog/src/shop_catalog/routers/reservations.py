import uuid
from datetime import timedelta

from fastapi import APIRouter, Response, status

from shop_catalog import service
from shop_catalog.dependencies import SettingsDep
from shop_catalog.schemas import ReservationCreate, ReservationRead
from shopkit import AutocommitSessionDep, IdempotencyKey, SessionDep

router = APIRouter(prefix="/reservations", tags=["reservations"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_reservation(
    body: ReservationCreate, key: IdempotencyKey, session: SessionDep, settings: SettingsDep, response: Response
) -> ReservationRead:
    result = await service.reserve(
        session, key=key, items=body.items, ttl=timedelta(seconds=settings.reservation_ttl_seconds)
    )
    if not result.created:
        response.headers["Idempotent-Replayed"] = "true"
    return ReservationRead.model_validate(result.reservation)


@router.get("/{reservation_id}")
async def get_reservation(reservation_id: uuid.UUID, session: SessionDep) -> ReservationRead:
    return ReservationRead.model_validate(await service.get_reservation(session, reservation_id))


@router.post("/{reservation_id}/commit")
async def commit_reservation(reservation_id: uuid.UUID, session: AutocommitSessionDep) -> ReservationRead:
    return ReservationRead.model_validate(await service.commit(session, reservation_id))


@router.post("/{reservation_id}/release")
async def release_reservation(reservation_id: uuid.UUID, session: SessionDep) -> ReservationRead:
    return ReservationRead.model_validate(await service.release(session, reservation_id))
