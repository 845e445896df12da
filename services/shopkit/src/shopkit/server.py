"""Runs a service under uvicorn with Kubernetes' shutdown contract.

On SIGTERM the pod is still listed in the Service's endpoints for a moment: readiness turns 503 at once, requests
are still served for `SHUTDOWN_DELAY_SECONDS` while the endpoints catch up, then uvicorn stops accepting, lets
in-flight requests finish and the process exits 0.
"""

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

import structlog
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from shopkit.logging import configure_logging
from shopkit.migrations import upgrade
from shopkit.probes import ProbeState
from shopkit.settings import ServiceSettings
from shopkit.state import state_of

log = structlog.get_logger(__name__)

KEEP_ALIVE_SECONDS = 5
"""How long an idle kept-alive connection stays open (uvicorn's default, stated): the clients in `shopkit.http`
give their idle connections up sooner, so they never reuse one the server is closing at that very moment."""

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, probes: ProbeState, delay_seconds: float) -> None:
        super().__init__(config)
        self.probes = probes
        self.delay_seconds = delay_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.probes.draining:  # a second signal: stop draining and shut down now
            self.should_exit = True
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        self.probes.draining = True
        log.info("drain_started", signal=signal.Signals(sig).name, delay_seconds=self.delay_seconds)
        if self.delay_seconds > 0:
            timer = threading.Timer(self.delay_seconds, self._stop)
            timer.daemon = True
            timer.start()
        else:
            self._stop()

    def _stop(self) -> None:
        log.info("drain_finished")
        self.should_exit = True


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        server_header=False,
    )
    server = DrainingServer(config, state_of(app).probes, settings.shutdown_delay_seconds)
    server.run()


def configure_process(settings: ServiceSettings) -> None:
    configure_logging(level=settings.log_level, json=settings.json_logs)


def run_service(
    prog: str,
    settings_class: type[SettingsT],
    app_factory: Callable[[SettingsT], FastAPI],
    *,
    migrations: str | None = None,
) -> None:
    """The command line of a service: `<prog> serve` (the default) or, with a database, `<prog> migrate`."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument(
        "command", nargs="?", choices=["serve", "migrate"] if migrations else ["serve"], default="serve"
    )
    command = parser.parse_args().command
    try:
        settings = settings_class()
    except ValidationError as exc:
        sys.exit(f"{prog}: invalid settings\n{exc}")
    configure_process(settings)
    if command == "migrate":
        assert migrations is not None
        if settings.database_url is None:
            parser.error("DATABASE_URL is not set")
        upgrade(migrations, settings.database_url.get_secret_value())
        log.info("migrations_applied", service=prog)
        return
    if settings.is_production and (missing := settings.missing_credentials()):
        sys.exit(f"{prog}: {', '.join(missing)} must be set in production (the shop's own credentials)")
    serve(app_factory(settings), settings)
