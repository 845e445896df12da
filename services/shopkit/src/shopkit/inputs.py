"""Hostile text in a request: a 4xx problem that changes nothing, never a 500 from the database refusing it.

PostgreSQL stores neither a NUL character nor anything that is not UTF-8 in text, and says so with an error
(`invalid byte sequence`, `cannot contain NUL`) that would reach the client as a 500. Each part of a request is kept
from getting that far once, where it is cheapest:

- **The URL** (path and query string): `TextOnlyUrlMiddleware` answers 400 to a request whose path or query, once
  percent-decoded, holds a NUL or bytes that are not UTF-8 (`/products/%00abc`, `?q=%ff`), before any route or
  admission slot is spent on it. It reads the bytes the server received (`raw_path`, `query_string`): the decoded
  `path` has already turned invalid UTF-8 into U+FFFD, which would look like text. The usual request has no `%`
  and is ASCII: two scans of a few dozen bytes in C, and nothing is decoded.
- **Headers**: the HTTP server refuses a NUL in a header itself (a plain 400); a value is Latin-1 text, and those a
  route reads are checked by their pattern (`Idempotency-Key`) or compared as opaque bytes (credentials, tokens).
- **JSON bodies** are not scanned here: parsing each body a second time would cost every checkout. Their strings
  are checked by the schemas the routes already validate with, at no extra cost: every string field has a
  length bound and every number both bounds (`tests/test_hostile_input.py` walks every service's document to keep
  it so); pydantic, checking a bound, refuses a lone surrogate (`"\\ud800"`, which no encoder can write) with a
  422, and the patterns of the string fields (SKU, e-mail, name, card number, password) refuse a NUL. Invalid
  UTF-8 in a body is malformed JSON (400).
- **Last line of defence**: should a value still reach the database and be refused as one it cannot store (a NUL,
  an invalid byte sequence, a number or a string out of the column's range), `shopkit.problems` answers 422 rather
  than 500. It costs nothing until it happens; then the transaction has been rolled back, so nothing changed.

Numbers past 64 bits need nothing of their own: every integer a route takes has bounds (`le=`), and Python's
integers do not overflow before being compared with them.
"""

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from shopkit.problems import ShopError, error_response


class MalformedUrl(ShopError):
    status, title, slug = 400, "Malformed URL", "malformed-url"


def text_problem(raw: bytes, *, percent_encoded: bool = True) -> str | None:
    """What keeps `raw` (a path or a query string as received, percent-encoded unless told otherwise) from being
    text, or None."""
    decoded = unquote_to_bytes(raw) if percent_encoded and b"%" in raw else raw
    if b"\x00" in decoded:
        return "a NUL character"
    if not decoded.isascii():
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            return "bytes that are not UTF-8"
    return None


class TextOnlyUrlMiddleware:
    """Answers 400 problem+json to a request whose path or query string is not NUL-free UTF-8 once decoded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path")
            problem = (
                text_problem(raw_path)
                if raw_path is not None  # `raw_path` is optional in ASGI: then `path` is all there is, decoded
                else text_problem(scope["path"].encode("utf-8", "surrogateescape"), percent_encoded=False)
            )
            part = "path"
            if problem is None and (query := scope.get("query_string")):
                problem, part = text_problem(query), "query string"
            if problem is not None:
                await error_response(MalformedUrl(f"The {part} holds {problem} once percent-decoded."))(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)
