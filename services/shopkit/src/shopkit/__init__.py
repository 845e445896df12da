"""shopkit: the plumbing every resilient-shop service shares. It holds no domain models."""

from shopkit.app import create_app, database_check
from shopkit.background import in_background, periodically
from shopkit.cache import CachedResponse, ResponseCache, ResponseCacheMiddleware
from shopkit.db import (
    AutocommitConnectionDep,
    SessionDep,
    TransactionDep,
    autocommit,
    autocommit_engine,
    create_engine,
    driver_url,
    new_metadata,
    sessionmaker,
    status_column,
)
from shopkit.http import create_client, is_retryable, send_with_retries
from shopkit.idempotency import IdempotencyKey, fingerprint
from shopkit.logging import configure_logging, current_request_id
from shopkit.migrations import head_revision, run_env, upgrade
from shopkit.openapi import Problem, problem_response, problems
from shopkit.probes import ProbeState, cgroup_memory_limit, memory_budget, resident_memory_bytes
from shopkit.problems import (
    PROBLEM_JSON,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RetryLaterError,
    ShopError,
    UnauthorizedError,
    UnavailableError,
    UnprocessableError,
    UpstreamError,
    problem,
)
from shopkit.server import configure_process, run_service, serve
from shopkit.settings import ServiceSettings, shared
from shopkit.state import Database, ServiceState, Upstreams, state_of

__all__ = [
    "PROBLEM_JSON",
    "AutocommitConnectionDep",
    "CachedResponse",
    "ConflictError",
    "Database",
    "ForbiddenError",
    "IdempotencyKey",
    "NotFoundError",
    "ProbeState",
    "Problem",
    "ResponseCache",
    "ResponseCacheMiddleware",
    "RetryLaterError",
    "ServiceSettings",
    "ServiceState",
    "SessionDep",
    "ShopError",
    "TransactionDep",
    "UnauthorizedError",
    "UnavailableError",
    "UnprocessableError",
    "UpstreamError",
    "Upstreams",
    "autocommit",
    "autocommit_engine",
    "cgroup_memory_limit",
    "configure_logging",
    "configure_process",
    "create_app",
    "create_client",
    "create_engine",
    "current_request_id",
    "database_check",
    "driver_url",
    "fingerprint",
    "head_revision",
    "in_background",
    "is_retryable",
    "memory_budget",
    "new_metadata",
    "periodically",
    "problem",
    "problem_response",
    "problems",
    "resident_memory_bytes",
    "run_env",
    "run_service",
    "send_with_retries",
    "serve",
    "sessionmaker",
    "shared",
    "state_of",
    "status_column",
    "upgrade",
]
