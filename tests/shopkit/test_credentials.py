"""The shop's own credentials as settings and as a check: the first value is presented, every value accepted, no
value ever printed."""

import os
import subprocess
import sys

import pydantic
import pytest
from pydantic_settings import BaseSettings

from shop_devtools.processes import free_port
from shop_devtools.workspace import private_key_pem
from shopkit.credentials import Callers, Credential, presented
from tests.conftest import CREDENTIALS

NEW, OLD = "n" * 16 + "-new", "o" * 16 + "-old"


class Settings(BaseSettings):
    model_config = {"hide_input_in_errors": True}

    credential: Credential = None


def test_a_credential_is_read_from_the_environment_as_one_or_two_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIAL", f" {NEW} , {OLD} ")
    credential = Settings().credential
    assert credential is not None
    assert [value.get_secret_value() for value in credential] == [NEW, OLD]
    assert presented(credential) == {"Authorization": f"Bearer {NEW}"}
    assert presented(None) == {}
    monkeypatch.setenv("CREDENTIAL", "")
    assert Settings().credential is None


@pytest.mark.parametrize("value", ["q1w2e3", f"{NEW},{OLD},{'x' * 20}", f"{NEW},r4t5y6"])
def test_a_short_credential_or_a_third_value_is_refused_without_printing_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CREDENTIAL", value)
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings()
    for part in value.split(","):
        assert part not in str(refused.value)


def test_callers_know_every_accepted_value_and_nothing_else() -> None:
    settings = Settings(credential=f"{NEW},{OLD}")
    callers = Callers({"payment": settings.credential, "operator": Settings(credential="p" * 20).credential, "x": None})
    assert callers.identify(NEW) == callers.identify(OLD) == "payment"
    assert callers.identify("p" * 20) == "operator"
    for stranger in ["", NEW + " ", f"{NEW},{OLD}", NEW[:-1], "p" * 21, "\udcff"]:
        assert callers.identify(stranger) is None


@pytest.mark.parametrize(
    ("service", "names"),
    [
        ("catalog", "OPERATOR_CREDENTIAL, PAYMENT_CREDENTIAL, STOREFRONT_CREDENTIAL"),
        ("payment", "PAYMENT_CREDENTIAL"),
        ("storefront", "OPERATOR_CREDENTIAL, STOREFRONT_CREDENTIAL"),
    ],
)
def test_a_production_server_refuses_to_start_without_the_credentials_it_reads(service: str, names: str) -> None:
    """In development a missing credential refuses the callers (401); in production the server does not start."""
    env = {name: value for name, value in os.environ.items() if name not in CREDENTIALS}
    env |= {"ENVIRONMENT": "production", "USERS_JWT_PRIVATE_KEY": private_key_pem(), "PORT": str(free_port())}
    started = subprocess.run(
        [sys.executable, "-m", f"shop_{service}", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 1
    assert f"shop-{service}: {names} must be set in production" in started.stderr
