"""Passwords (argon2id, hashed off the event loop) and tokens (EdDSA JWTs with their public key as a JWKS)."""

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import anyio
import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shop_users.exceptions import InvalidTokenError

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("sub", "email", "iss", "aud", "iat", "exp")
HASH_CONCURRENCY = 4
"""Hashes computed at once per process: each takes the hasher's memory cost (64 MiB by default)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_private_key(pem: str) -> Ed25519PrivateKey:
    """Parses a PEM (PKCS#8) Ed25519 private key; literal `\\n` escapes (from one-line env files) are accepted."""
    try:
        key = serialization.load_pem_private_key(pem.replace("\\n", "\n").encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("not a PEM private key without a passphrase") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the private key is not an Ed25519 key")
    return key


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 8037) whose `kid` is its RFC 7638 thumbprint."""
    x = _b64url(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    required = {"crv": "Ed25519", "kty": "OKP", "x": x}
    thumbprint = _b64url(hashlib.sha256(json.dumps(required, separators=(",", ":"), sort_keys=True).encode()).digest())
    return {**required, "kid": thumbprint, "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    email: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenKeys:
    """Issues and verifies the access tokens; other services verify them offline with `jwk`."""

    private_key: Ed25519PrivateKey
    issuer: str
    audience: str
    ttl_seconds: int

    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @cached_property
    def jwk(self) -> dict[str, str]:
        return public_jwk(self.public_key)

    def issue(self, user_id: uuid.UUID, email: str, *, now: datetime | None = None) -> str:
        issued_at = now or datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "email": email,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued_at,
            "exp": issued_at + timedelta(seconds=self.ttl_seconds),
        }
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.jwk["kid"]})

    def verify(self, token: str) -> TokenClaims:
        """Checks signature, issuer, audience and expiry; raises `InvalidTokenError` for anything else."""
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS)},
            )
            return TokenClaims(
                user_id=uuid.UUID(claims["sub"]),
                email=str(claims["email"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise InvalidTokenError from None


class Passwords:
    """argon2id hashing in worker threads, at most `HASH_CONCURRENCY` at once so memory stays bounded."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._limiter = anyio.CapacityLimiter(HASH_CONCURRENCY)

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches. Without a hash (no such account) the password is hashed instead, which
        costs the same argon2 work, and the answer is False."""
        if password_hash is None:
            await self.hash(password)
            return False
        return await anyio.to_thread.run_sync(self._verify, password_hash, password, limiter=self._limiter)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
