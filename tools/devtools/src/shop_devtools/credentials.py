"""The shop's own credentials (shopkit.credentials): one random secret per caller, made once and kept.

- `PAYMENT_CREDENTIAL`: payment's, towards catalog's reservations.
- `STOREFRONT_CREDENTIAL`: the storefront's, when it passes the operator's `/ops/` requests on to catalog.
- `OPERATOR_CREDENTIAL`: the operator's (the drill, the bench, the container proof), at the storefront's `/ops/`
  and at catalog directly.

`make run` keeps them in `<data dir>/credentials.env`, the cluster in the `credentials` Secret (from
k8s/base/generated/credentials.env), both written once with mode 0600 by `write_private`.
"""

import contextlib
import secrets
from collections.abc import Mapping
from pathlib import Path

from shop_devtools.workspace import write_private

NAMES = ("PAYMENT_CREDENTIAL", "STOREFRONT_CREDENTIAL", "OPERATOR_CREDENTIAL")
OPERATOR = "OPERATOR_CREDENTIAL"
FILE_NAME = "credentials.env"


def new_credentials() -> dict[str, str]:
    """A fresh random value for every caller (hex: safe in env files, headers and Secrets)."""
    return {name: secrets.token_hex(32) for name in NAMES}


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines; blank lines and `#` comments skipped."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    pairs = (line.partition("=") for line in lines if line and not line.startswith("#"))
    return {name.strip(): value.strip() for name, _, value in pairs}


def env_text(values: Mapping[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in values.items())


def ensure_credentials(path: Path) -> dict[str, str]:
    """The credentials kept at `path`, made there (mode 0600) the first time; a file missing a name gets a new one
    for it only, so a rotation the user wrote by hand (`new,old`) is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another launcher made it first: read theirs
            write_private(path, env_text(new_credentials()), replace=False)
    values = read_env_file(path)
    if missing := {name: value for name, value in new_credentials().items() if not values.get(name)}:
        values |= missing
        write_private(path, env_text(values), replace=True)
    return {name: values[name] for name in NAMES}


def bearer(credential: str) -> dict[str, str]:
    """The header that presents `credential` (its first value, when it lists two during a rotation)."""
    return {"Authorization": f"Bearer {credential.split(',')[0].strip()}"}
