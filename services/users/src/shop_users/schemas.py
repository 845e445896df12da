"""Request and response bodies, separate from the ORM models."""

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
EMAIL_PATTERN = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>(?:{_LABEL}\.)+{_TLD})")
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
"""A password may hold any character but NUL, which no text column stores and no client types (`shopkit.inputs`)."""


def _email(value: str) -> str:
    """A plain ASCII address (dot-atom local part, a DNS domain with a TLD); the domain is lowercased."""
    match = EMAIL_PATTERN.fullmatch(value)
    if match is None or len(match["local"]) > 64:
        raise ValueError("not a valid email address")
    return f"{match['local']}@{match['domain'].lower()}"


Email = Annotated[str, Field(max_length=254, examples=["ada@example.com"]), AfterValidator(_email)]
Password = Annotated[str, Field(min_length=8, max_length=128, pattern=NO_NUL)]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NO_CONTROL_CHARACTERS)
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    name: Name


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class TokenCreate(BaseModel):
    """Login. Only loosely checked, so a malformed email gets the same 401 as an unknown one."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(min_length=1, max_length=254, pattern=NO_CONTROL_CHARACTERS)]
    password: Annotated[str, Field(min_length=1, max_length=128, pattern=NO_NUL)]


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class JsonWebKey(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class JsonWebKeySet(BaseModel):
    keys: list[JsonWebKey]
