"""Request body size limit, answered as problem+json (413) whether the size is announced or streamed.

Bodies here are small JSON documents, so the middleware reads the whole body (up to the limit) before the app
sees it: an oversized upload is refused before any route runs, the same way for both cases. A request without
`Transfer-Encoding` passes straight through: it has no body, or one whose announced length the server enforces.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkit.problems import ShopError, error_response


class BodyTooLarge(ShopError):
    status, title, slug = 413, "Request body too large", "body-too-large"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
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
                await self._refuse(scope, receive, send)
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
