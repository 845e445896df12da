"""structlog for every service: JSON in containers, readable in a terminal, a request id bound per request."""

import logging
import os
import sys
import time
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkit.problems import internal_error

REQUEST_ID_HEADER = "x-request-id"
QUIET_PATHS = frozenset({"/healthz", "/ready", "/metrics"})


def configure_logging(*, level: str = "info", json: bool = False) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        # filter_by_level first: an event below the level is dropped before it is timestamped and rendered
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # One INFO line per request, the access line: httpx's line per call to another service repeats the callee's.
    logging.getLogger("httpx").setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(_alembic_context)


def _alembic_context(record: logging.LogRecord) -> bool:
    """Drops the two lines Alembic logs whenever a migration context is made, as every readiness check makes one to
    compare the database's revision with the code's; its lines about migrations run still pass."""
    return not (record.levelno == logging.INFO and record.msg in _ALEMBIC_CONTEXT_LINES)


_ALEMBIC_CONTEXT_LINES = frozenset({"Context impl %s.", "Will assume %s DDL."})


class RequestContextMiddleware:
    """Binds a request id (taken from `X-Request-ID` or made up) to every log line and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("shopkit.access")
        self.access = logging.getLogger("shopkit.access")  # its level, checked before a line is even prepared

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else os.urandom(16).hex()
        # Reset, not cleared, at the end: an app called in-process by another (ASGITransport) gives the caller's
        # request its id back.
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        started_at = time.perf_counter()
        status, started = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Answered here rather than by Starlette's outermost handler so the request id is still bound.
            self.log.exception("unhandled_error", path=scope["path"], error_type=type(exc).__name__)
            if started:
                raise
            await internal_error()(scope, receive, send_with_id)
        finally:
            if (scope["path"] not in QUIET_PATHS or status >= 500) and self.access.isEnabledFor(logging.INFO):
                fields: dict[str, Any] = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started_at) * 1000, 1),
                }
                self.log.info("request", **fields)
            structlog.contextvars.reset_contextvars(**bound)


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None
