"""`make compose-up`'s helper: the env file with the signing key, and the compose commands."""

import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from shop_devtools.compose import down_argv, env_file, up_argv


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


def test_compose_commands() -> None:
    assert up_argv(monitoring=False) == ["docker", "compose", "up", "--detach", "--wait", "--wait-timeout", "180"]
    assert up_argv(monitoring=True)[2:4] == ["--profile", "monitoring"]
    assert down_argv(volumes=True)[-1] == "--volumes"
    assert "--volumes" not in down_argv(volumes=False)
