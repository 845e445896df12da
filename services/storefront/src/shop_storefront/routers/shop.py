"""The web shop: one self-contained page (plain JS, no CDN, no build step) that talks to `/api`.

Every page of the storefront (the shop, the recovery page and its login) is served by `page_response`: one file,
its inline script and style allowed by their hashes in a Content-Security-Policy, and nothing else.
"""

import base64
import functools
import hashlib
import re
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["shop"])

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@functools.cache
def _page(name: str) -> tuple[str, str]:
    """The page and a Content-Security-Policy that allows exactly its own inline script and style."""
    html = (files("shop_storefront") / "static" / name).read_text(encoding="utf-8")
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, content in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(hashes['script'])}",
            f"style-src {' '.join(hashes['style'])}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html, policy


def page_response(name: str) -> HTMLResponse:
    html, policy = _page(name)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": policy,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    return page_response("index.html")
