"""Errors as RFC 9457 problem details: domain exceptions carry a status and a title, one handler renders them."""

from http import HTTPStatus
from typing import Any, ClassVar

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from shop_contracts import PROBLEM_BASE

PROBLEM_JSON = "application/problem+json"

log = structlog.get_logger(__name__)


class ShopError(Exception):
    """A failure the client can act on. Subclasses set `status`, `title` and `slug` (the problem type)."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    slug: ClassVar[str] = "bad-request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class NotFoundError(ShopError):
    status, title, slug = 404, "Not found", "not-found"


class ConflictError(ShopError):
    status, title, slug = 409, "Conflict", "conflict"


class UnprocessableError(ShopError):
    status, title, slug = 422, "Unprocessable request", "unprocessable"


class UnauthorizedError(ShopError):
    status, title, slug = 401, "Not authenticated", "unauthorized"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class ForbiddenError(ShopError):
    status, title, slug = 403, "Forbidden", "forbidden"


class UpstreamError(ShopError):
    status, title, slug = 502, "Upstream service failed", "upstream-failed"


class UnavailableError(ShopError):
    status, title, slug = 503, "Service unavailable", "unavailable"


class RetryLaterError(UnavailableError):
    """Unavailable for a moment (busy, out of time, a dependency away): the answer tells the client when to come
    back, and a `503` with `Retry-After` is never retried by another service (`shopkit.http`)."""

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extra)


class Overloaded(RetryLaterError):
    title, slug = "Overloaded", "overloaded"


class DatabaseUnavailable(RetryLaterError):
    title, slug = "Database unavailable", "database-unavailable"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_response(error: ShopError) -> JSONResponse:
    """The problem+json answer for `error`: the one rendering of domain errors, for handlers and middleware alike."""
    return problem(error.status, error.title, error.detail, type_=error.type, headers=error.headers, **error.extra)


async def _shop_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShopError)
    return error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The offending input is never echoed back: it may hold a password or a card number.
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(
            400,
            "Malformed JSON",
            "The request body is not valid JSON.",
            type_=PROBLEM_BASE + "malformed-json",
        )
    return problem(
        422,
        "Validation failed",
        "The request does not match the schema.",
        type_=PROBLEM_BASE + "validation",
        errors=errors,
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = _status_title(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(exc.status_code, title, detail, headers=dict(exc.headers or {}) or None)


class UnstorableValue(UnprocessableError):
    title, slug = "Value cannot be stored", "unstorable-value"


UNSTORABLE_SQLSTATES = frozenset({"22001", "22003", "22021", "22P05"})
"""The database's refusals of a value itself: a string too long for its column, a number out of range, a byte
sequence (NUL included) that is not text, a character the encoding lacks."""


def refused_value(error: BaseException | None) -> bool:
    """Whether `error` (a driver's) is the database, or the driver before it, refusing a value it cannot store:
    psycopg refuses a NUL in text before sending it, as a `DataError` without a SQLSTATE."""
    return isinstance(error, psycopg.DataError) and (error.sqlstate is None or error.sqlstate in UNSTORABLE_SQLSTATES)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A lost or refused database connection is the database being away, not a bug: 503, and the pool has already
    dropped the connections it can no longer trust. A value the database cannot store is the request's (422: the
    last line of defence behind `shopkit.inputs`; the transaction is rolled back). Any other database error is a
    bug (500)."""
    assert isinstance(exc, DBAPIError)
    if refused_value(exc.orig):
        log.warning("database_refused_value", path=request.url.path, sqlstate=getattr(exc.orig, "sqlstate", None))
        return error_response(UnstorableValue("The request holds a value that cannot be stored."))
    if not exc.connection_invalidated and not isinstance(exc.orig, psycopg.OperationalError):
        return await _unexpected_error(request, exc)
    log.warning("database_unavailable", path=request.url.path, error_type=type(exc.orig).__name__)
    return error_response(DatabaseUnavailable("The database cannot be reached right now; retry shortly."))


async def _pool_timeout(request: Request, exc: Exception) -> JSONResponse:
    """Every pooled connection stayed busy for the pool's whole timeout: too much work, answered as such."""
    log.warning("database_pool_exhausted", path=request.url.path)
    return error_response(Overloaded("Every database connection is busy; retry shortly."))


CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a client that left before its answer: recorded in logs and metrics, sent to nobody."""


async def _client_disconnected(request: Request, exc: Exception) -> Response:
    log.debug("client_disconnected", path=request.url.path)  # the access line records the 499
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def internal_error() -> JSONResponse:
    return problem(500, "Internal Server Error", "An unexpected error occurred; it has been logged.")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    return internal_error()


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ShopError, _shop_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _pool_timeout)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)
    app.add_exception_handler(Exception, _unexpected_error)
