"""Run by a workspace member's own interpreter, in a venv that holds the member and what it declares, nothing else
(tests/test_workspace_members.py): `python member_probe.py <package> [<script_location> ...]`.

Imports every module of the package, loads each console script it provides and every Alembic revision under the
script locations named. Standard library only. Prints one line per failure and exits 1 if there was any.
"""

import importlib
import importlib.util
import pkgutil
import sys
from importlib.metadata import entry_points


def _failure(what: str, exc: BaseException) -> str:
    return f"{what}: {type(exc).__name__}: {exc}"


def _not_imported(module: str) -> bool:
    """`<package>.__main__` serves and a migrations `env.py` runs only inside Alembic: both are run, not imported."""
    return module.endswith(".__main__") or module.endswith(".migrations.env")


def import_all(package: str) -> list[str]:
    failures: list[str] = []
    try:
        if importlib.util.find_spec("locust") is not None:
            # Locust patches the standard library with gevent when imported, which must happen before anything
            # imports ssl: the `locust` command imports it before a locustfile, and so does this.
            importlib.import_module("locust")
        root = importlib.import_module(package)
    except Exception as exc:
        return [_failure(package, exc)]
    names = [info.name for info in pkgutil.walk_packages(root.__path__, f"{package}.", onerror=lambda name: None)]
    for name in names:
        if _not_imported(name):
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            failures.append(_failure(name, exc))
    return failures


def load_console_scripts(package: str) -> list[str]:
    failures: list[str] = []
    for script in entry_points(group="console_scripts"):
        if script.module.split(".")[0] == package:
            try:
                script.load()
            except Exception as exc:
                failures.append(_failure(f"console script {script.name}", exc))
    return failures


def load_revisions(script_location: str) -> list[str]:
    try:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", script_location)
        ScriptDirectory.from_config(config).get_heads()  # imports every revision file
    except Exception as exc:
        return [_failure(f"migrations {script_location}", exc)]
    return []


def main(package: str, *script_locations: str) -> int:
    failures = import_all(package) + load_console_scripts(package)
    for location in script_locations:
        failures += load_revisions(location)
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
