"""An embedded PostgreSQL for `make run` and the tests: no server to install.

The binaries come from the `pgserver` wheel (PostgreSQL 16), or from the machine (`PG_BIN_DIR`, or Debian's
/usr/lib/postgresql/<version>/bin). The server listens on 127.0.0.1 and on a Unix socket in its data directory,
with trust authentication: it is a developer's throw-away database, never a deployment's.
"""

import importlib.util
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

UNPRIVILEGED_USER = "nobody"  # initdb and postgres refuse to run as root
SOCKET_PATH_MAX = 107  # a Unix socket's path, without the NUL that ends it


SYSTEM_POSTGRESQL = Path("/usr/lib/postgresql")
"""Where Debian and Ubuntu install PostgreSQL's server binaries, one directory per major version."""


def find_bin_dir(system: Path = SYSTEM_POSTGRESQL) -> Path:
    if explicit := os.environ.get("PG_BIN_DIR"):
        return Path(explicit)
    # Only pgserver's binaries are used; importing it would start its own machinery.
    if (spec := importlib.util.find_spec("pgserver")) is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "pginstall" / "bin"
        if (bundled / "postgres").exists():
            return bundled
    if installed := sorted(system.glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)):
        return installed[-1].parent
    raise RuntimeError(
        "no PostgreSQL binaries: the pgserver wheel has none for this platform (Linux on arm64), and no PostgreSQL is "
        f"installed in {system}. Install one (Debian/Ubuntu: `apt-get install postgresql`), set PG_BIN_DIR "
        "to the directory holding initdb and pg_ctl, or run against a server: POSTGRES_ADMIN_URL=postgresql://... "
        "make run"
    )


def url_for(admin_url: str, *, user: str, password: str, database: str) -> str:
    """`admin_url` (a TCP address, or a Unix socket named in its query) as `user` with `password` on `database`."""
    parts = urlsplit(admin_url)
    host = parts.hostname or ""  # none: a Unix socket, named in the query (`?host=/dir&port=5433`)
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))


def _make_reachable(path: Path) -> None:
    """Lets the unprivileged server user traverse `path` and every parent of it (search permission only: nothing
    becomes listable or readable). A clone in a private directory (`/root`, what `mktemp -d` makes) holds both the
    binaries (in its `.venv`) and the data directory behind one the server user could not enter."""
    for parent in [path, *path.parents]:
        if not (mode := parent.stat().st_mode) & 0o001:
            parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    fast_and_unsafe: bool = False  # tests only: no fsync

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path | None:
        """Where the server's Unix socket is, or None when its path would be too long for one."""
        fits = len(str(self.data_dir / f".s.PGSQL.{self.port}").encode()) <= SOCKET_PATH_MAX
        return self.data_dir if fits else None

    def admin_url(self, database: str = "postgres", *, socket: bool = True) -> str:
        """Through the Unix socket when there is one: a statement costs the client (and the server) less CPU than
        over TCP on loopback, which made a sale's checkouts a fifth faster on 2 cores. Else, or with `socket=False`
        (for a client in a container, which cannot see the host's socket), 127.0.0.1."""
        if self.socket_dir is None or not socket:
            return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def _run(self, program: str, *args: str) -> None:
        """`program` of the binaries with `args`, on the data directory; as the unprivileged user when run as root."""
        kwargs: dict[str, object] = {}
        bin_dir = find_bin_dir()
        if os.geteuid() == 0:
            # Every time: a parent may have been closed since the last run (pytest resets its tmp root to 0700).
            _make_reachable(bin_dir)
            _make_reachable(self.data_dir)
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        argv = [str(bin_dir / program), "-D", str(self.pgdata), *args]
        subprocess.run(argv, check=True, capture_output=True, text=True, cwd=self.data_dir, **kwargs)  # type: ignore[call-overload]

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, UNPRIVILEGED_USER)
        if not (self.pgdata / "PG_VERSION").exists():
            self._run("initdb", "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-h 127.0.0.1 -p {self.port} -k '{self.socket_dir or ''}' -c max_connections=300"
        if self.fast_and_unsafe:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-w", "-t", "30", "-o", options, "-l", str(self.data_dir / "postgres.log"), "start")

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._run("pg_ctl", "-w", "-m", "fast", "stop")

    def __enter__(self) -> Self:
        """Started; stopped again when the block ends, however it ends."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
