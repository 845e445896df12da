"""Login throttling per email: 5 free failures, then 429 with Retry-After, 1 s doubling up to 60 s, the same
for an email no account has; the counts in PostgreSQL, shared by every replica and never lost between them."""

import asyncio
import hashlib
import math

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from shop_users import throttle
from shop_users.main import create_app
from shop_users.settings import UsersSettings
from shop_users.state import UsersState
from shop_users.throttle import LoginThrottle, email_digest
from shopkit import state_of
from tests.conftest import client_for, running
from tests.users.helpers import PASSWORD, assert_problem, register

ADA, BOB, GHOST = "ada@example.com", "bob@example.com", "ghost@example.com"
WRONG = "wrong horse"
THROTTLED_AFTER_FIVE = [401] * 5 + [429] * 6


@pytest.fixture
async def accounts(users: httpx.AsyncClient) -> None:
    for email in (ADA, BOB):
        assert (await register(users, email)).status_code == 201


async def log_in(client: httpx.AsyncClient, email: str, password: str = WRONG) -> httpx.Response:
    return await client.post("/tokens", json={"email": email, "password": password})


async def log_in_times(client: httpx.AsyncClient, email: str, times: int) -> list[httpx.Response]:
    """`times` wrong passwords for `email` in a row, each sent as soon as the one before is answered."""
    return [await log_in(client, email) for _ in range(times)]


async def failures_of(database_url: str, email: str) -> int | None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT failures FROM login_failures WHERE email_digest = %s", (email_digest(email),)
        )
        row = await cursor.fetchone()
        return None if row is None else int(row[0])


async def insert_failures(database_url: str, email: str, *, failures: int, seconds_ago: float) -> None:
    """The email's row as if its last failure (of `failures` in a row) was `seconds_ago`."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(
            "INSERT INTO login_failures (email_digest, failures, last_failed_at) "
            "VALUES (%(digest)s, %(failures)s, now() - make_interval(secs => %(ago)s))",
            {"digest": email_digest(email), "failures": failures, "ago": seconds_ago},
        )


async def test_eleven_wrong_passwords_lock_the_email_for_a_second_then_the_right_one_works(
    users: httpx.AsyncClient, accounts: None, database_url: str
) -> None:
    responses = await log_in_times(users, ADA, 11)

    assert [r.status_code for r in responses] == THROTTLED_AFTER_FIVE
    throttled = responses[-1]
    body = assert_problem(throttled, 429)
    assert body["title"] == "Too many failed logins"
    assert str(body["type"]).endswith("/login-throttled")
    assert throttled.headers["retry-after"] == "1"  # the lock after the 5th failure: 1 s by default
    assert await failures_of(database_url, ADA) == 5, "a throttled attempt is not counted"

    await asyncio.sleep(int(throttled.headers["retry-after"]))
    assert (await log_in(users, ADA, PASSWORD)).status_code == 200
    assert await failures_of(database_url, ADA) is None, "a successful login clears the failures"
    assert (await log_in(users, ADA)).status_code == 401


async def test_the_lock_grows_with_each_failure_after_it_ends(users: httpx.AsyncClient, accounts: None) -> None:
    first = await log_in_times(users, ADA, 6)
    assert first[-1].status_code == 429
    await asyncio.sleep(int(first[-1].headers["retry-after"]))

    again = await log_in_times(users, ADA, 2)

    assert [r.status_code for r in again] == [401, 429]
    assert again[-1].headers["retry-after"] == "2"


async def test_an_unknown_email_gets_the_same_answers_as_an_account(users: httpx.AsyncClient, accounts: None) -> None:
    known, unknown = await asyncio.gather(log_in_times(users, ADA, 11), log_in_times(users, GHOST, 11))

    assert [r.status_code for r in known] == [r.status_code for r in unknown] == THROTTLED_AFTER_FIVE
    assert known[-1].headers["retry-after"] == unknown[-1].headers["retry-after"]
    assert [r.json() for r in known] == [r.json() for r in unknown]
    assert known[-1].headers["content-type"] == unknown[-1].headers["content-type"] == "application/problem+json"


async def test_the_email_is_normalized_and_only_its_digest_is_stored(
    users: httpx.AsyncClient, accounts: None, database_url: str
) -> None:
    for email in ("ADA@example.com", " ada@EXAMPLE.com ", "Ada@Example.Com", ADA, ADA):
        assert (await log_in(users, email)).status_code == 401

    assert (await log_in(users, ADA, PASSWORD)).status_code == 429
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute("SELECT email_digest, failures FROM login_failures")).fetchall()
    assert rows == [(email_digest(ADA), 5)]
    assert email_digest(" ADA@Example.com") == hashlib.sha256(b"ada@example.com").hexdigest()


async def test_another_email_is_not_affected(users: httpx.AsyncClient, accounts: None) -> None:
    assert (await log_in_times(users, ADA, 6))[-1].status_code == 429

    assert (await log_in(users, BOB, PASSWORD)).status_code == 200
    assert (await log_in(users, BOB)).status_code == 401
    assert (await log_in(users, ADA, PASSWORD)).status_code == 429


async def test_the_lock_never_exceeds_the_cap(users: httpx.AsyncClient, accounts: None, database_url: str) -> None:
    await insert_failures(database_url, ADA, failures=1000, seconds_ago=0)

    response = await log_in(users, ADA, PASSWORD)

    assert_problem(response, 429)
    assert response.headers["retry-after"] == "60"


async def test_failures_older_than_the_window_are_forgotten(
    users: httpx.AsyncClient, accounts: None, database_url: str
) -> None:
    await insert_failures(database_url, ADA, failures=40, seconds_ago=901)

    assert (await log_in(users, ADA)).status_code == 401
    assert await failures_of(database_url, ADA) == 1


async def test_expired_rows_are_deleted_a_bounded_batch_at_each_failure(
    users: httpx.AsyncClient, database_url: str
) -> None:
    """100 expired rows at most go with each recorded failure, oldest first; rows inside the window stay."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(
            "INSERT INTO login_failures (email_digest, failures, last_failed_at) "
            "SELECT encode(sha256(i::text::bytea), 'hex'), 3, now() - make_interval(secs => 901 + 10 * i) "
            "FROM generate_series(1, %s) AS i",
            (throttle.EXPIRED_BATCH + 5,),
        )
    await insert_failures(database_url, BOB, failures=2, seconds_ago=899)

    async def count_rows() -> tuple[int, int]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cursor = await conn.execute(
                "SELECT count(*) FILTER (WHERE last_failed_at < now() - interval '900 seconds'), count(*) "
                "FROM login_failures"
            )
            expired, total = await cursor.fetchone() or (0, 0)
            return int(expired), int(total)

    assert (await log_in(users, GHOST)).status_code == 401
    assert await count_rows() == (5, 5 + 2)  # ghost's and bob's rows stay
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT min(last_failed_at) < now() - interval '956 seconds' FROM login_failures")
        assert (await cursor.fetchone()) == (False,), "the oldest rows went first"

    assert (await log_in(users, GHOST)).status_code == 401
    assert await count_rows() == (0, 2)
    assert await failures_of(database_url, BOB) == 2


async def test_concurrent_failures_through_the_app_are_all_counted(settings: UsersSettings, database_url: str) -> None:
    lenient = settings.model_copy(update={"login_free_failures": 100})
    async with running(create_app(lenient)) as app, client_for(app, "users") as client:
        responses = await asyncio.gather(*(log_in(client, GHOST) for _ in range(8)))

    assert [r.status_code for r in responses] == [401] * 8
    assert await failures_of(database_url, GHOST) == 8


async def test_replicas_counting_one_email_at_once_lose_no_count(app: FastAPI, database_url: str) -> None:
    """Each of 10 sessions (as many as the pool has, as if on as many replicas) records a failure at once: the
    upsert's row lock orders them, each sees its own count."""
    maker = state_of(app).database.sessionmaker
    policy = state_of(app).own(UsersState).login_throttle
    digest = email_digest(GHOST)
    start = asyncio.Event()

    async def fail_once() -> int:
        async with maker() as session:
            await start.wait()
            failures = await throttle.record_failure(session, policy, digest)
            await session.commit()
            return failures

    tasks = [asyncio.create_task(fail_once()) for _ in range(10)]
    await asyncio.sleep(0.05)
    start.set()

    assert sorted(await asyncio.gather(*tasks)) == list(range(1, 11))
    assert await failures_of(database_url, GHOST) == 10


@pytest.mark.parametrize(
    ("policy", "locks"),
    [
        (LoginThrottle(), [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]),
        (LoginThrottle(free_failures=1, lock_base_seconds=0.25, lock_max_seconds=3), [0.25, 0.5, 1, 2, 3, 3]),
    ],
    ids=["defaults", "tiny_base"],
)
def test_the_lock_doubles_after_the_free_failures_up_to_the_cap(policy: LoginThrottle, locks: list[float]) -> None:
    assert [policy.lock_seconds(n) for n in range(1, len(locks) + 1)] == locks
    assert policy.lock_seconds(0) == 0
    assert policy.lock_seconds(10**9) == policy.lock_max_seconds


async def test_retry_after_is_the_remaining_lock_rounded_up(app: FastAPI) -> None:
    maker = state_of(app).database.sessionmaker
    policy = state_of(app).own(UsersState).login_throttle
    digest = email_digest(GHOST)
    async with maker() as session:
        for failures in range(1, 9):
            assert await throttle.record_failure(session, policy, digest) == failures
            wait = await throttle.retry_after(session, policy, digest)
            lock = policy.lock_seconds(failures)
            assert wait == (math.ceil(lock) if lock else None)
        await session.rollback()


async def test_a_throttled_login_is_logged_by_digest_only(users: httpx.AsyncClient) -> None:
    await log_in_times(users, GHOST, 5)

    with capture_logs() as logs:
        assert (await log_in(users, GHOST, PASSWORD)).status_code == 429

    [event] = [e for e in logs if e["event"] == "login_throttled"]
    assert event["log_level"] == "warning"
    assert event["email_digest"] == email_digest(GHOST)[: throttle.LOGGED_DIGEST_CHARS]
    assert event["retry_after"] == 1
    assert GHOST not in repr(logs)
    assert PASSWORD not in repr(logs)
