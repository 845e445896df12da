"""The drill's options: parsed once into a frozen `DrillConfig`, the defaults from the environment resolved, a bad
value refused as argparse refuses one."""

from pathlib import Path

import pydantic
import pytest

from shop_devtools.topology import SHOP_URL
from shop_load.core.drill_args import DEFAULTS, fault_body, parse_args


def test_the_defaults_come_from_the_environment_and_what_was_given_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHOP_URL", "PROFILE", "DRILL_OUT", "CHAOS_TOKEN", "CATALOG_RESERVATION_TTL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    plain = parse_args([])
    assert (plain.url, plain.profile, plain.out, plain.chaos_token) == (SHOP_URL, "resilient", Path("drill-out"), None)
    assert (plain.rate, plain.reservation_ttl, plain.compare, plain.model_fields_set) == (50.0, 300.0, None, set())

    monkeypatch.setenv("SHOP_URL", "http://192.168.49.2:30080/")
    monkeypatch.setenv("PROFILE", "fragile")
    monkeypatch.setenv("CATALOG_RESERVATION_TTL_SECONDS", "60")
    from_env = parse_args([])
    assert (from_env.url, from_env.profile, from_env.reservation_ttl) == ("http://192.168.49.2:30080", "fragile", 60.0)
    assert "url" not in from_env.model_fields_set, "--check keeps the ledger's URL unless one is given"

    given = parse_args(["--url", "http://shop/", "--rate", "8", "--local", "--compare", "a.json", "b.json"])
    assert (given.url, given.rate, given.local, given.compare) == (
        "http://shop",
        8.0,
        True,
        (Path("a.json"), Path("b.json")),
    )
    assert {"url", "rate", "local", "compare"} == given.model_fields_set
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        given.rate = 9.0  # type: ignore[misc]


def test_what_depends_on_the_target_is_resolved_once_it_is_known() -> None:
    config = parse_args(["--fault", "hang"])
    assert [config.fault_seconds(mode) for mode in ("local", "kubernetes")] == [DEFAULTS["local"]["duration"], 180.0]
    assert fault_body(config, "local") == {"seconds": 30.0}
    assert fault_body(parse_args(["--fault", "hang", "--duration", "12"]), "local") == {"seconds": 12.0}
    assert fault_body(config, "kubernetes") == {"seconds": 120.0}


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--rate", "lots"], "argument --rate: Input should be a valid number"),
        (["--fault", "flood"], "argument --fault: invalid choice: 'flood'"),
        (["--local", "--kubernetes"], "argument --kubernetes: not allowed with argument --local"),
    ],
)
def test_a_bad_option_exits_with_the_usage_and_says_which(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert f"shop-drill: error: {error}" in capsys.readouterr().err
