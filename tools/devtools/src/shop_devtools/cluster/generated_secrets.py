"""The secrets kustomize reads (k8s/base/generated/, git-ignored): written once with random values, kept
afterwards (the PostgreSQL volume remembers its passwords; a credential is rotated by editing its file), with the
database URLs always derived from postgres.env."""

import secrets
from pathlib import Path

from shop_devtools.credentials import FILE_NAME as CREDENTIALS_FILE
from shop_devtools.credentials import env_text, new_credentials, read_env_file
from shop_devtools.topology import DATABASES
from shop_devtools.workspace import private_key_pem, write_private

DATABASE_SERVICES = tuple(service.name for service in DATABASES)
POSTGRES_HOST = "postgres.shop.svc"

GENERATED_FILES = (
    "postgres.env",
    *(f"{service}-database.env" for service in DATABASE_SERVICES),
    "users-jwt-private-key.pem",
    "chaos.env",
    CREDENTIALS_FILE,
)
"""What the base's secretGenerator reads from k8s/base/generated/."""


def database_url(service: str, password: str) -> str:
    return f"postgresql://{service}:{password}@{POSTGRES_HOST}:5432/{service}"


def generate_secrets(generated_dir: Path) -> list[Path]:
    """Writes the secrets the base's secretGenerator reads, each file only if missing; returns those written.

    Passwords, the chaos token and the shop's own credentials (`credentials.env`: payment's, the storefront's and
    the operator's, for the `credentials` Secret) are random (hex: safe in URLs and env files); the users' key is a
    fresh Ed25519 key. Existing files are kept, because the PostgreSQL volume remembers the superuser password it
    was created with and a rotation is done by editing `credentials.env` (`new,old`); the DATABASE_URL files are
    derived from postgres.env, so they always agree with it.
    """
    written = []
    generated_dir.mkdir(parents=True, exist_ok=True)
    postgres_env = generated_dir / "postgres.env"
    if not postgres_env.exists():
        passwords = {"POSTGRES_PASSWORD": secrets.token_hex(24)}
        passwords |= {f"{service.upper()}_DB_PASSWORD": secrets.token_hex(24) for service in DATABASE_SERVICES}
        write_private(postgres_env, env_text(passwords), replace=False)
        written.append(postgres_env)
    passwords = read_env_file(postgres_env)
    for service in DATABASE_SERVICES:
        path = generated_dir / f"{service}-database.env"
        text = env_text({"DATABASE_URL": database_url(service, passwords[f"{service.upper()}_DB_PASSWORD"])})
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_private(path, text, replace=True)
            written.append(path)
    key = generated_dir / "users-jwt-private-key.pem"
    if not key.exists():
        write_private(key, private_key_pem(), replace=False)
        written.append(key)
    chaos = generated_dir / "chaos.env"
    if not chaos.exists():
        write_private(chaos, env_text({"CHAOS_TOKEN": secrets.token_hex(32)}), replace=False)
        written.append(chaos)
    credentials = generated_dir / CREDENTIALS_FILE
    if not credentials.exists():
        write_private(credentials, env_text(new_credentials()), replace=False)
        written.append(credentials)
    return written
