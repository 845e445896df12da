"""The operator's session on the recovery page: a cookie the browser sends by itself (HttpOnly, SameSite=Strict),
so the credential is typed once into a form and never travels in a URL, a log line or a script's memory.

The cookie holds its expiry and an HMAC of it keyed by the operator credential: the storefront keeps no session
table (any of its replicas accepts it), and rotating the operator credential ends every session made with the old
one once it is no longer accepted.
"""

import hashlib
import hmac
import time
from collections.abc import Callable

from pydantic import SecretStr

COOKIE = "shop_recovery"
LIFETIME_SECONDS = 8 * 3600
"""A working day: the page is left open through a drill, and a new login is one form away."""


def _key(credential: SecretStr) -> bytes:
    return hashlib.sha256(b"resilient-shop recovery session\0" + credential.get_secret_value().encode()).digest()


def _mac(key: bytes, expires: int) -> str:
    return hmac.new(key, str(expires).encode("ascii"), hashlib.sha256).hexdigest()


def issue(credential: SecretStr, *, now: Callable[[], float] = time.time) -> str:
    """A session value made with `credential` (the operator's presented one), valid for `LIFETIME_SECONDS`."""
    expires = int(now()) + LIFETIME_SECONDS
    return f"{expires}.{_mac(_key(credential), expires)}"


def valid(value: str | None, accepted: tuple[SecretStr, ...], *, now: Callable[[], float] = time.time) -> bool:
    """Whether `value` was issued with one of the `accepted` credentials and has not expired."""
    expires_text, _, mac = (value or "").partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or int(expires_text) < now():
        return False
    expires = int(expires_text)
    matches = [hmac.compare_digest(mac, _mac(_key(credential), expires)) for credential in accepted]
    return any(matches)
