"""Request body size limit, answered as problem+json (413) whether the size is announced or streamed."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkit.problems import ShopError, problem


class BodyTooLarge(ShopError):
    status, title, slug = 413, "Request body too large", "body-too-large"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"The request body is limited to {self.max_bytes} bytes."
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            too_large = BodyTooLarge(detail)
            await problem(too_large.status, too_large.title, detail, type_=too_large.type)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(detail)
            return message

        await self.app(scope, limited_receive, send)
