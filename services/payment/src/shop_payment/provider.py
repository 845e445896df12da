"""The simulated card provider, as a real one behaves: deterministic by card number, slow, idempotent.

It keeps its own books (the `provider_*` tables) through its own connection pool, like a remote system: the
payment's pool never lends it a connection, and none of the payment's transactions is open while it works. Once it
has answered for a payment id, it answers the same for that id forever, so a payment retried after a crash is
never charged twice.
"""

import asyncio
import hashlib
import uuid

from sqlalchemy import Integer, Uuid, bindparam, case, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_payment.models import ProviderCard, ProviderCharge
from shopkit import autocommit_engine

DECLINED_CARDS = frozenset({"4000000000000002"})
VAULT_CACHE_SIZE = 10_000

_EARLIER_CHARGE = select(ProviderCharge.outcome).where(ProviderCharge.payment_id == bindparam("payment_id"))
_CHARGE = (
    select(
        insert(ProviderCharge)
        .from_select(
            ["payment_id", "token", "amount_cents", "outcome"],
            select(
                bindparam("payment_id", type_=Uuid),
                ProviderCard.token,
                bindparam("amount_cents", type_=Integer),
                case((ProviderCard.approves, "approved"), else_="declined"),
            ).where(ProviderCard.token == bindparam("token")),
        )
        .on_conflict_do_nothing()
        .returning(ProviderCharge.outcome)
        .cte("charged")
        .c.outcome
    )
    .union_all(_EARLIER_CHARGE)
    .limit(1)
)
"""One round trip: the outcome of the charge this statement makes, else of the one recorded before it began."""


class SimulatedProvider:
    def __init__(self, maker: async_sessionmaker[AsyncSession], *, latency_seconds: float) -> None:
        self.maker = maker
        self.statements = autocommit_engine(maker.kw["bind"])
        self.latency_seconds = latency_seconds
        self._vaulted: set[str] = set()
        """Tokens known to be in the vault already: a card's row never changes, so it is written once."""

    async def tokenize(self, card_number: str) -> str:
        token = "tok_" + hashlib.sha256(card_number.encode()).hexdigest()[:40]
        if token not in self._vaulted:
            async with self.maker() as session, session.begin():
                await session.execute(
                    insert(ProviderCard)
                    .values(token=token, last4=card_number[-4:], approves=card_number not in DECLINED_CARDS)
                    .on_conflict_do_nothing()
                )
            if len(self._vaulted) < VAULT_CACHE_SIZE:
                self._vaulted.add(token)
        return token

    async def charge(self, payment_id: uuid.UUID, token: str, amount_cents: int) -> str:
        """Returns "approved" or "declined"; the first answer for a payment id is the answer for good."""
        await asyncio.sleep(self.latency_seconds)
        async with self.statements.connect() as connection:
            # One round trip: the new charge's outcome, or the one recorded before this statement began.
            params = {"payment_id": payment_id, "token": token, "amount_cents": amount_cents}
            answer: str | None = await connection.scalar(_CHARGE, params)
            if answer is None:  # charged by a concurrent call that committed after this statement began
                answer = await connection.scalar(_EARLIER_CHARGE, params)
        if answer is None:
            raise LookupError(f"card token {token} is not in the provider's vault")
        return answer
