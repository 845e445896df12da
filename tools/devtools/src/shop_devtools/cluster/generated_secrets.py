"""The secrets kustomize reads (k8s/base/generated/, git-ignored): written once with random values, kept
afterwards (the PostgreSQL volume remembers its passwords; a credential is rotated by editing its file), with the
database URLs always derived from postgres.env."""

import secrets
from collections.abc import Callable
from pathlib import Path

from shop_devtools.credentials import FILE_NAME as CREDENTIALS_FILE
from shop_devtools.credentials import env_text, new_credentials, read_env_file
from shop_devtools.topology import DATABASES
from shop_devtools.workspace import private_key_pem, write_private

DATABASE_SERVICES = tuple(service.name for service in DATABASES)
POSTGRES_HOST = "postgres.shop.svc"
PASSWORDS = ("POSTGRES_PASSWORD", *(f"{service.upper()}_DB_PASSWORD" for service in DATABASE_SERVICES))

MADE_ONCE: dict[str, Callable[[], str]] = {
    "postgres.env": lambda: env_text({name: secrets.token_hex(24) for name in PASSWORDS}),
    "users-jwt-private-key.pem": private_key_pem,
    "chaos.env": lambda: env_text({"CHAOS_TOKEN": secrets.token_hex(32)}),
    CREDENTIALS_FILE: lambda: env_text(new_credentials()),
}
"""The files written once, each with what makes its fresh random content."""
GENERATED_FILES = (*MADE_ONCE, *(f"{service}-database.env" for service in DATABASE_SERVICES))
"""What the base's secretGenerator reads from k8s/base/generated/."""


def generate_secrets(generated_dir: Path) -> list[Path]:
    """Writes the secrets the base's secretGenerator reads, each file only if missing; returns those written.

    Passwords, the chaos token and the shop's own credentials (`credentials.env`: payment's, the storefront's and
    the operator's, for the `credentials` Secret) are random (hex: safe in URLs and env files); the users' key is a
    fresh Ed25519 key. Existing files are kept, because the PostgreSQL volume remembers the superuser password it
    was created with and a rotation is done by editing `credentials.env` (`new,old`); the DATABASE_URL files are
    derived from postgres.env, so they always agree with it.
    """
    generated_dir.mkdir(parents=True, exist_ok=True)
    written = [generated_dir / name for name in MADE_ONCE if not (generated_dir / name).exists()]
    for path in written:
        write_private(path, MADE_ONCE[path.name](), replace=False)
    kept = read_env_file(generated_dir / "postgres.env")
    for service in DATABASE_SERVICES:
        path, password = generated_dir / f"{service}-database.env", kept[f"{service.upper()}_DB_PASSWORD"]
        text = env_text({"DATABASE_URL": f"postgresql://{service}:{password}@{POSTGRES_HOST}:5432/{service}"})
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_private(path, text, replace=True)
            written.append(path)
    return written
