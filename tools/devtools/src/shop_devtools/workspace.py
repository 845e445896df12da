"""The checkout the tools work in: where its root is, its version, a fresh signing key for users, and files only
their owner may read (`write_private`) to keep such secrets in."""

import os
import re
import tomllib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class WorkspaceError(Exception):
    """The checkout is not where or what the tools expect; the message says what to do."""


def repository_root() -> Path:
    """The workspace root: the first directory with `uv.lock` and `pyproject.toml` above this file (the tools run
    from the checkout they are installed from), or else above the current directory."""
    here, cwd = Path(__file__).resolve(), Path.cwd()
    for directory in [*here.parents, cwd, *cwd.parents]:
        if (directory / "uv.lock").is_file() and (directory / "pyproject.toml").is_file():
            return directory
    raise WorkspaceError("cannot find the repository root (a directory with uv.lock and pyproject.toml): run from it")


def project_version(root: Path) -> str:
    """`[project].version` of the root pyproject.toml, checked to be a usable image tag."""
    with (root / "pyproject.toml").open("rb") as file:
        version = tomllib.load(file).get("project", {}).get("version")
    if not isinstance(version, str) or not _TAG.fullmatch(version) or version == "latest":
        raise WorkspaceError(f"the root pyproject.toml's [project].version {version!r} is not a usable image tag")
    return version


def private_key_pem() -> str:
    """A new Ed25519 key for users to sign tokens with, as the PEM `USERS_JWT_PRIVATE_KEY` takes."""
    return Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")


def write_private(path: Path, text: str, *, replace: bool) -> None:
    """Writes `text` to `path` as a file only its owner can read or write: mode 0600 whatever the umask, and
    whatever mode a file it rewrites had (the mode is set on the open file, before `text` is in it).

    `replace=False` creates the file and refuses an existing one (`FileExistsError`; `O_EXCL`): of two launchers
    creating the same secret at once, exactly one writes it and the other fails instead of overwriting what the
    first may already have handed out; the loser should read the winner's file (once it is complete) or stop.
    `replace=True` creates or rewrites in place (`O_TRUNC`): two launchers writing at once both succeed and the
    file ends as the last one wrote it, or, when their texts differ in length, as a mix of both; so replace only
    what every writer derives alike (a database URL from its password file), never a fresh random secret.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)
        file.write(text)
