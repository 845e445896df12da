"""`make compose-up` / `make compose-down`: the shop with `docker compose`, from this repository's images.

    python -m shop_devtools.compose up [--monitoring]
    python -m shop_devtools.compose down [--volumes]

`up` writes `.data/compose.env` once (the users service's signing key, which production settings require; see
docker-compose.yml), then `docker compose up --detach --wait`. Build the images first (`make images`).
"""

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from shop_devtools.cluster import ClusterError, require_tools
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
    args = parser.parse_args(argv)
    root = repository_root()
    try:
        require_tools("docker")
        if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0:
            raise ClusterError("`docker compose` (the Compose v2 plugin, 2.24 or later) is required")
        if args.command == "up":
            env_file(root)
            run(up_argv(monitoring=args.monitoring), root)
            print("the shop is at http://localhost:8080", flush=True)
            if args.monitoring:
                print("Prometheus http://localhost:9090, Grafana http://localhost:3000", flush=True)
        else:
            run(down_argv(volumes=args.volumes), root)
    except (ClusterError, WorkspaceError, subprocess.CalledProcessError) as exc:
        sys.exit(f"compose: {exc}")


if __name__ == "__main__":
    main()
