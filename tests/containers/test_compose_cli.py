"""`make compose-up`'s helper: the env file with the signing key, the credentials and each service's share of them,
and the compose commands."""

import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shop_devtools.compose import credential_files, down_argv, env_file, up_argv
from shop_devtools.credentials import NAMES, read_env_file
from shop_devtools.runconfig import credentials_file as make_run_credentials_file
from shop_devtools.topology import SERVICES


def test_the_env_file_holds_a_real_key_is_private_and_is_never_overwritten(tmp_path: Path) -> None:
    path = env_file(tmp_path)
    assert path == tmp_path / ".data" / "compose.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    name, _, value = path.read_text().strip().partition("=")
    assert name == "USERS_JWT_PRIVATE_KEY"
    assert "\n" not in value
    key = load_pem_private_key(value.replace("\\n", "\n").encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    first = path.read_text()
    assert env_file(tmp_path).read_text() == first


def test_the_credentials_are_made_once_and_each_service_gets_only_its_own(tmp_path: Path) -> None:
    shares = credential_files(tmp_path)
    source = make_run_credentials_file(tmp_path / ".data")  # the file make run keeps: the drill reads it
    credentials = read_env_file(source)
    assert list(credentials) == list(NAMES)
    readers = [service for service in SERVICES if service.credentials]
    assert shares == [tmp_path / ".data" / "compose" / f"{service.name}.env" for service in readers]
    for path in [source, *shares]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for service, path in zip(readers, shares, strict=True):
        assert read_env_file(path) == {name: credentials[name] for name in service.credentials}, service.name

    assert credential_files(tmp_path) == shares
    assert read_env_file(source) == credentials, "kept"
    rotated = {**credentials, "OPERATOR_CREDENTIAL": "new-operator-credential," + credentials["OPERATOR_CREDENTIAL"]}
    source.write_text("".join(f"{name}={value}\n" for name, value in rotated.items()))
    credential_files(tmp_path)
    assert read_env_file(tmp_path / ".data" / "compose" / "storefront.env")["OPERATOR_CREDENTIAL"].startswith("new-")
    assert "OPERATOR_CREDENTIAL" not in read_env_file(tmp_path / ".data" / "compose" / "payment.env")


def test_compose_commands() -> None:
    assert up_argv(monitoring=False) == ["docker", "compose", "up", "--detach", "--wait", "--wait-timeout", "180"]
    assert up_argv(monitoring=True)[2:4] == ["--profile", "monitoring"]
    assert down_argv(volumes=True)[-1] == "--volumes"
    assert "--volumes" not in down_argv(volumes=False)
