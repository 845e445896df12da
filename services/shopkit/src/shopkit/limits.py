"""Request body size limit, answered as problem+json (413) whether the size is announced or streamed.

Bodies here are small JSON documents, so the middleware reads the whole body (up to the limit) before the app
sees it: an oversized upload is refused before any route runs, the same way for both cases. A request without
`Transfer-Encoding` passes straight through: it has no body, or one whose announced length the server enforces.

A client must be able to read its 413. One still sending when the server closes the connection gets a reset, and
its operating system drops the answer with it (Python's `urllib` lost it 2 runs in 3 on a 3 MiB body). So the rest
of an oversized body is read and dropped before the answer, within `DRAIN_MAX_BYTES` and `DRAIN_SECONDS`; past
those the connection is cut. A client that sent `Expect: 100-continue` (curl does, for large bodies) is answered at
once: it has not sent the body, and does not once it reads the 413.
"""

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkit.problems import ShopError, error_response


class BodyTooLarge(ShopError):
    status, title, slug = 413, "Request body too large", "body-too-large"


DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 2.0


async def _drain(receive: Receive, received: int) -> None:
    """Reads what is left of a body and drops it; `received` bytes of it have been read already."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while received <= DRAIN_MAX_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, *, unread: bool = True, received: int = 0
    ) -> None:
        if unread and not any(
            name == b"expect" and value.lower() == b"100-continue" for name, value in scope["headers"]
        ):
            await _drain(receive, received)
        error = BodyTooLarge(f"The request body is limited to {self.max_bytes} bytes.")
        await error_response(error)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, streamed = b"", False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                streamed = True
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        if not streamed:
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, unread=message.get("more_body", False), received=size)
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
