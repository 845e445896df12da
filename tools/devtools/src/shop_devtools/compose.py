"""`make compose-up` / `make compose-down`: the shop with `docker compose`, from this repository's images.

    python -m shop_devtools.compose up [--monitoring]
    python -m shop_devtools.compose down [--volumes]

`up` writes what docker-compose.yml reads from `.data/` (git-ignored, every file mode 0600), then
`docker compose up --detach --wait`. Build the images first (`make images`).

- `.data/compose.env`, once: the users service's signing key, which production settings require.
- `.data/credentials.env`, once (`shop_devtools.credentials.ensure_credentials`): the shop's own credentials,
  payment's, the storefront's and the operator's. It is the very file `make run` keeps in its default data
  directory: the shop on this machine, either way it runs (both serve `topology.SHOP_URL`, so never both at
  once), has one set of credentials in one place, and the drill and the bench find the operator's there without
  asking which. Rotate by editing it (`new,old`, then `new`), each time followed by `make compose-up`.
- `.data/compose/<service>.env`, on every `up`: what each service reads of `credentials.env` and nothing else
  (`topology.Service.credentials`: catalog all three, payment its own, storefront its own and the operator's,
  users none), as the Deployments take single keys of the `credentials` Secret. Compose can only give an env file
  whole, so these are derived from the one file, rewritten when it changed, never edited by hand.

The files, not the shell's environment, are the source: the containers outlive this command, and a value only in
the shell would be lost by the next `docker compose up`. The env files are optional in docker-compose.yml
(`docker compose down` or `config` work in a fresh clone); a service started without its file has no credential
and its internal endpoints refuse everyone, so start the stack with `make compose-up`.
"""

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from shop_devtools.cluster import ClusterError, require_tools
from shop_devtools.credentials import ensure_credentials, env_text
from shop_devtools.runconfig import credentials_file
from shop_devtools.topology import SERVICES, SHOP_URL
from shop_devtools.workspace import WorkspaceError, private_key_pem, repository_root, write_private


def env_file(root: Path) -> Path:
    """`.data/compose.env`: created once with a fresh key (mode 600), never overwritten."""
    path = root / ".data" / "compose.env"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        escaped = private_key_pem().strip().replace("\n", "\\n")
        write_private(path, f"USERS_JWT_PRIVATE_KEY={escaped}\n", replace=False)
        print(f"wrote the users service's signing key to {path}", flush=True)
    return path


def credential_files(root: Path) -> list[Path]:
    """Makes `.data/credentials.env` once, then each service's share of it (mode 600), `.data/compose/<service>.env`,
    as docker-compose.yml gives it to the service; returns the share files of the services that read any. Only the
    paths are ever printed, never a value."""
    source = credentials_file(root / ".data")  # the file `make run` keeps: one set of credentials on this machine
    existed, credentials = source.exists(), ensure_credentials(source)
    if not existed:
        print(f"wrote the shop's credentials to {source}", flush=True)
    written = []
    for service in (service for service in SERVICES if service.credentials):
        path = root / ".data" / "compose" / f"{service.name}.env"
        text = env_text({name: credentials[name] for name in service.credentials})
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_private(path, text, replace=True)  # derived from the one file: every writer writes the same
        written.append(path)
    return written


def up_argv(*, monitoring: bool) -> list[str]:
    profile = ["--profile", "monitoring"] if monitoring else []
    return ["docker", "compose", *profile, "up", "--detach", "--wait", "--wait-timeout", "180"]


def down_argv(*, volumes: bool) -> list[str]:
    return ["docker", "compose", "--profile", "monitoring", "down", *(["--volumes"] if volumes else [])]


def run(argv: list[str], root: Path) -> None:
    print(f"$ {shlex.join(argv)}", flush=True)
    subprocess.run(argv, cwd=root, check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shop-compose", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up").add_argument("--monitoring", action="store_true", help="add Prometheus and Grafana")
    commands.add_parser("down").add_argument("--volumes", action="store_true", help="drop the database volume too")
    args, root = parser.parse_args(argv), repository_root()
    try:
        require_tools("docker")
        if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0:
            raise ClusterError("`docker compose` (the Compose v2 plugin, 2.24 or later) is required")
        if args.command == "up":
            env_file(root)
            credential_files(root)
            run(up_argv(monitoring=args.monitoring), root)
            print(f"the shop is at {SHOP_URL}", flush=True)
            print(f"the operator's door is {SHOP_URL}/ops/ (OPERATOR_CREDENTIAL in {credentials_file(root / '.data')})")
            if args.monitoring:
                print("Prometheus http://localhost:9090, Grafana http://localhost:3000", flush=True)
        else:
            run(down_argv(volumes=args.volumes), root)
    except (ClusterError, WorkspaceError, subprocess.CalledProcessError) as exc:
        sys.exit(f"compose: {exc}")


if __name__ == "__main__":
    main()
