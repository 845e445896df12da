"""The `Idempotency-Key` header and the fingerprint of a request body, shared by every idempotent POST."""

import hashlib
import json
from typing import Annotated, Any

from fastapi import Header

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="1-255 printable ASCII characters; the same key with the same body returns the same result",
    ),
]


def fingerprint(payload: Any) -> str:
    """A stable SHA-256 of a JSON-able payload: key order and whitespace do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
