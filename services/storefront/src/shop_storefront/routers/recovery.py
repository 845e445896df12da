"""The recovery page, its login and its data; operator only, never under `/api` nor in the public API reference.

`GET /recovery` without a session sends the browser to the login form; the data (`/recovery/state`) answers 401.
The form posts the operator credential once to `/recovery/session`, which sets the session cookie.
"""

from typing import Any

import structlog
from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shop_storefront.dependencies import SettingsDep, callers_of, watch_of
from shop_storefront.recovery import session
from shop_storefront.routers.shop import page_response
from shopkit.problems import UnauthorizedError

router = APIRouter(prefix="/recovery", include_in_schema=False)
log = structlog.get_logger(__name__)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: str = Field(min_length=1, max_length=512)


def has_session(request: Request, settings: SettingsDep) -> bool:
    return session.valid(request.cookies.get(session.COOKIE), settings.operator_credential or ())


async def _require_session(request: Request, settings: SettingsDep) -> None:
    if not has_session(request, settings):
        raise UnauthorizedError("Log in as the operator at /recovery/login first.")


SessionRequired = Depends(_require_session)


@router.get("", response_class=HTMLResponse)
async def page(request: Request, settings: SettingsDep) -> Response:
    if not has_session(request, settings):
        return RedirectResponse("/recovery/login", status_code=status.HTTP_303_SEE_OTHER)
    return page_response("recovery.html")


@router.get("/login", response_class=HTMLResponse)
async def login_form() -> Response:
    return page_response("login.html")


@router.post("/session", status_code=status.HTTP_204_NO_CONTENT)
async def log_in(login: Login, request: Request, settings: SettingsDep) -> Response:
    if callers_of(request).identify(login.credential) != "operator":
        log.warning("recovery_login_refused")
        raise UnauthorizedError("That is not the operator credential.")
    log.info("recovery_login")
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.set_cookie(
        session.COOKIE,
        session.issue(SecretStr(login.credential)),
        max_age=session.LIFETIME_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def log_out() -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(session.COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/state", dependencies=[SessionRequired])
async def state(request: Request, settings: SettingsDep) -> JSONResponse:
    snapshot: dict[str, Any] = await watch_of(request).snapshot()
    chaos = "" if settings.chaos_token else "The storefront has no CHAOS_TOKEN: faults cannot be injected from here."
    return JSONResponse({**snapshot, "chaos": chaos or None}, headers={"Cache-Control": "no-store"})
