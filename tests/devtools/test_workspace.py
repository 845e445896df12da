"""`shop_devtools.workspace.write_private`: the one writer of the secrets make run, compose and the cluster keep on
disk (users' signing key, passwords, the chaos token)."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shop_devtools.workspace import write_private


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 000: a file created with the default mode would be readable and writable by everyone."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
@pytest.mark.parametrize("replace", [False, True])
def test_a_new_file_is_the_owners_alone_whatever_the_umask(tmp_path: Path, replace: bool) -> None:
    path = tmp_path / "key.pem"
    write_private(path, "secret\n", replace=replace)
    assert path.read_text() == "secret\n"
    assert mode(path) == 0o600


def test_a_restrictive_umask_still_leaves_the_owner_able_to_write(tmp_path: Path) -> None:
    previous = os.umask(0o277)
    try:
        write_private(tmp_path / "key.pem", "secret\n", replace=False)
    finally:
        os.umask(previous)
    assert mode(tmp_path / "key.pem") == 0o600


def test_exclusive_create_refuses_an_existing_file_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("the first launcher's key\n")
    with pytest.raises(FileExistsError):
        write_private(path, "the second launcher's key\n", replace=False)
    assert path.read_text() == "the first launcher's key\n"


@pytest.mark.usefixtures("permissive_umask")
def test_replace_rewrites_an_existing_file_whole_and_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "database.env"
    path.write_text("DATABASE_URL=a longer value than the new one\n")
    path.chmod(0o644)
    write_private(path, "DATABASE_URL=short\n", replace=True)
    assert path.read_text() == "DATABASE_URL=short\n"
    assert mode(path) == 0o600
