"""The operator at the storefront's door (`shop_load.core.ops`): where its credential is found, and that the value is
never shown."""

from pathlib import Path

import pytest

from shop_devtools.credentials import OPERATOR, env_text, new_credentials
from shop_load.core import ops


def test_the_environment_wins_then_the_named_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials.env"
    credentials = new_credentials()
    path.write_text(env_text(credentials))
    assert ops.explicit({}, None) is None, "nothing given: the target's own is used"
    from_environment = ops.explicit({OPERATOR: "new,old"}, path)
    assert from_environment == ops.Operator("new,old", f"${OPERATOR}")
    assert from_environment is not None
    assert from_environment.headers == {"Authorization": "Bearer new"}, "during a rotation the first is presented"
    assert ops.explicit({}, path) == ops.Operator(credentials[OPERATOR], str(path))
    assert ops.from_file(path) == ops.Operator(credentials[OPERATOR], str(path))
    assert ops.from_file(tmp_path / "missing.env") is None
    (tmp_path / "other.env").write_text("# no operator here\nPAYMENT_CREDENTIAL=x\n")
    assert ops.from_file(tmp_path / "other.env") is None
    with pytest.raises(ops.CredentialMissing, match=r"other\.env holds no OPERATOR_CREDENTIAL"):
        ops.explicit({}, tmp_path / "other.env")


def test_the_credential_is_never_shown() -> None:
    operator = ops.Operator("a-secret-value-0123456789", "somewhere")
    assert "a-secret-value" not in repr(operator)
    assert "a-secret-value" not in str(operator)
    assert "somewhere" in repr(operator)
