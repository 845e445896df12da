"""`make images`: every service's container image, built from the root Dockerfile (one target per service).

    python -m shop_devtools.images              # build the four images with `docker build` (BuildKit)
    python -m shop_devtools.images payment      # build some of them
    python -m shop_devtools.images drill        # the scheduled drill's image (shop_load and wrk), only by name
    python -m shop_devtools.images --list       # print the image names, one a line; builds nothing
    python -m shop_devtools.images --dry-run    # print the docker commands only

Images are named `resilient-shop/<service>:<version>`, the version being the root pyproject.toml's
`[project].version` (never `latest`): the Kubernetes manifests and docker-compose.yml use these names. They carry
no attestation (`BUILDX_NO_DEFAULT_ATTESTATIONS=1`): with Docker's containerd image store an image's provenance
manifest is left out of what `docker save` writes, and kind's import of that archive fails on it.

Environment, all optional:

- `BASE_IMAGE`: the Python base image of every stage (default `python:3.11-slim-bookworm`).
- `CA_BUNDLE`: a PEM file of CA certificates, given to the build as the BuildKit secret `ca`, so pip and uv trust
  a TLS-intercepting proxy. It replaces their default trust store for the build: give a full bundle.
- `DOCKER_BUILD_NETWORK`: the network of the build's RUN steps (`host` when the proxy or the resolver is only
  reachable from the host).
- `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` (either case): handed to the build as Docker's predefined proxy build
  arguments (by name only: docker reads their values from this environment, so they are not printed).
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shop_devtools.topology import CALLEES_FIRST
from shop_devtools.workspace import WorkspaceError, project_version, repository_root

SERVICES = tuple(service.name for service in CALLEES_FIRST)
"""The Dockerfile's targets, one per service, in the order they are built."""
DRILL = "drill"
"""The Dockerfile's target of the scheduled drill's image (k8s/components/scheduled-drill): built only when named."""
REPOSITORY = "resilient-shop"
DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")


class ImageError(Exception):
    """Something `make images` cannot do; the message says what to change."""


def image_name(service: str, version: str) -> str:
    return f"{REPOSITORY}/{service}:{version}"


@dataclass(frozen=True)
class BuildOptions:
    base_image: str = DEFAULT_BASE_IMAGE
    ca_bundle: Path | None = None
    network: str | None = None
    proxy_variables: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "BuildOptions":
        ca_bundle = None
        if raw := environ.get("CA_BUNDLE", "").strip():
            ca_bundle = Path(raw).expanduser().resolve()
            if not ca_bundle.is_file():
                raise ImageError(f"CA_BUNDLE={raw} is not a file: give the path of a PEM bundle of CA certificates")
            if "," in str(ca_bundle):  # docker's --secret value is comma-separated
                raise ImageError(f"CA_BUNDLE={raw}: docker cannot take a path with a comma; copy the file elsewhere")
        proxies = tuple(
            name for base in PROXY_VARIABLES for name in (base, base.lower()) if environ.get(name, "").strip()
        )
        base_image = environ.get("BASE_IMAGE", "").strip() or DEFAULT_BASE_IMAGE
        return cls(base_image, ca_bundle, environ.get("DOCKER_BUILD_NETWORK", "").strip() or None, proxies)


def build_argv(service: str, *, version: str, root: Path, options: BuildOptions) -> list[str]:
    """The `docker build` command of one service's image (run with DOCKER_BUILDKIT=1)."""
    argv = ["docker", "build", "--target", service, "--tag", image_name(service, version)]
    argv += ["--build-arg", f"BASE_IMAGE={options.base_image}", "--build-arg", f"VERSION={version}"]
    for name in options.proxy_variables:
        argv += ["--build-arg", name]
    if options.ca_bundle is not None:
        argv += ["--secret", f"id=ca,src={options.ca_bundle}"]
    if options.network is not None:
        argv += ["--network", options.network]
    return [*argv, "--file", str(root / "Dockerfile"), str(root)]


def build(services: Sequence[str], *, root: Path, environ: Mapping[str, str], dry_run: bool = False) -> list[str]:
    """Builds the services' images one after the other; returns their names."""
    version, options = project_version(root), BuildOptions.from_env(environ)
    if not dry_run and shutil.which("docker", path=environ.get("PATH")) is None:
        raise ImageError(
            "docker is not on PATH: `make images` builds with Docker (BuildKit, with the buildx plugin); "
            "install Docker Engine or Docker Desktop (https://docs.docker.com/get-docker/)"
        )
    env = {**environ, "DOCKER_BUILDKIT": "1", "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
    for service in services:
        argv = build_argv(service, version=version, root=root, options=options)
        print("$ DOCKER_BUILDKIT=1 " + shlex.join(argv), flush=True)
        if not dry_run and (returncode := subprocess.run(argv, env=env, check=False).returncode) != 0:
            raise ImageError(f"building {image_name(service, version)} failed (docker build exited {returncode})")
    return [image_name(service, version) for service in services]


def run(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m shop_devtools.images", description=__doc__.splitlines()[0])
    cli.add_argument(
        "services", nargs="*", metavar="SERVICE", help=f"what to build (default: all): {', '.join(SERVICES)}, {DRILL}"
    )
    cli.add_argument("--list", action="store_true", help="print the image names, one a line, and build nothing")
    cli.add_argument("--dry-run", action="store_true", help="print the docker commands without running them")
    args, environ = cli.parse_args(argv), os.environ if environ is None else environ
    if unknown := [service for service in args.services if service not in (*SERVICES, DRILL)]:
        cli.error(f"unknown service {', '.join(unknown)}: choose from {', '.join(SERVICES)} or {DRILL}")
    services = list(dict.fromkeys(args.services)) or list(SERVICES)
    try:
        root = repository_root()
        if args.list:
            print("\n".join(image_name(service, project_version(root)) for service in services), flush=True)
            return 0
        names = build(services, root=root, environ=environ, dry_run=args.dry_run)
    except (ImageError, WorkspaceError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    if not args.dry_run:
        print("built " + " ".join(names), flush=True)
    return 0


def main() -> None:
    raise SystemExit(run())


if __name__ == "__main__":
    main()
