"""The import contracts in pyproject.toml (`lint-imports`, run by `make lint`): they name every package of the
workspace, keep the services apart and below the tools and the load, and forbid cycles in every package, type-only
imports included."""

import re
import tomllib
from pathlib import Path
from typing import Any

from shop_devtools.topology import SERVICES

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONFIG: dict[str, Any] = PYPROJECT["tool"]["importlinter"]
SERVICE_PACKAGES = {service.module for service in SERVICES}
LIBRARY_PACKAGES = {"shopkit", "shop_contracts"}


def workspace_packages() -> set[str]:
    """Every package a workspace member ships (`<member>/src/<package>/__init__.py`)."""
    members = (path for glob in PYPROJECT["tool"]["uv"]["workspace"]["members"] for path in ROOT.glob(glob))
    return {init.parent.name for member in members for init in member.glob("src/*/__init__.py")}


def contracts(kind: str) -> list[dict[str, Any]]:
    return [contract for contract in CONFIG["contracts"] if contract["type"] == kind]


def test_the_contracts_cover_every_package_of_the_workspace() -> None:
    packages = workspace_packages()
    assert packages == SERVICE_PACKAGES | LIBRARY_PACKAGES | {"shop_devtools", "shop_load"}
    assert set(CONFIG["root_packages"]) == packages


def test_type_only_imports_count() -> None:
    assert CONFIG.get("exclude_type_checking_imports", False) is False


def test_no_package_has_a_cycle_at_any_depth() -> None:
    [acyclic] = contracts("acyclic_siblings")
    assert set(acyclic["ancestors"]) == set(CONFIG["root_packages"])
    assert "depth" not in acyclic  # the default reaches every subpackage
    assert not acyclic.get("skip_descendants")


def test_services_are_apart_and_below_the_tools() -> None:
    [apart] = contracts("independence")
    assert set(apart["modules"]) == SERVICE_PACKAGES
    forbidden = [(set(c["source_modules"]), set(c["forbidden_modules"])) for c in contracts("forbidden")]
    assert (SERVICE_PACKAGES | LIBRARY_PACKAGES, {"shop_devtools", "shop_load"}) in forbidden
    assert (LIBRARY_PACKAGES, SERVICE_PACKAGES) in forbidden
    assert ({"shop_devtools"}, {"shop_load"}) in forbidden


def test_the_parts_of_shop_load_are_layered() -> None:
    """Every subpackage of shop_load is in one layer of the contract, and its top level holds only the Locust file
    beside them (the entry points are the parts' `__main__` modules)."""
    [layers] = [c for c in contracts("layers") if c["containers"] == ["shop_load"]]
    layered = {part.strip() for layer in layers["layers"] for part in layer.split("|")}
    package = ROOT / "load" / "src" / "shop_load"
    assert layered == {init.parent.name for init in package.glob("*/__init__.py")}
    assert {path.name for path in package.glob("*.py")} == {"__init__.py", "locustfile.py"}
    assert layers["layers"][-1] == "core"


def test_no_contract_ignores_an_import() -> None:
    assert not any(contract.get("ignore_imports") for contract in CONFIG["contracts"])


def test_make_lint_checks_the_contracts() -> None:
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert recipe is not None
    assert "$(UV) run --locked lint-imports" in recipe.group(1)
