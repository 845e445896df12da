"""The simulated card provider, as a real one behaves: deterministic by card number, slow, idempotent.

It keeps its own books (the `provider_*` tables) through its own connection pool, like a remote system: the
payment's pool never lends it a connection, and none of the payment's transactions is open while it works. Once it
has answered for a payment id, it answers the same for that id forever, so a payment retried after a crash is
never charged twice.
"""

import asyncio
import hashlib
import uuid

from sqlalchemy import case, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shop_payment.models import ProviderCard, ProviderCharge
from shopkit import autocommit

DECLINED_CARDS = frozenset({"4000000000000002"})
VAULT_CACHE_SIZE = 10_000


class SimulatedProvider:
    def __init__(self, maker: async_sessionmaker[AsyncSession], *, latency_seconds: float) -> None:
        self.maker = maker
        self.single = autocommit(maker)
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
        async with self.single() as session:
            outcome = case((ProviderCard.approves, "approved"), else_="declined")
            await session.execute(
                insert(ProviderCharge)
                .from_select(
                    ["payment_id", "token", "amount_cents", "outcome"],
                    select(literal(payment_id), ProviderCard.token, literal(amount_cents), outcome).where(
                        ProviderCard.token == token
                    ),
                )
                .on_conflict_do_nothing()
            )
            answer = await session.scalar(select(ProviderCharge.outcome).where(ProviderCharge.payment_id == payment_id))
        if answer is None:
            raise LookupError(f"card token {token} is not in the provider's vault")
        return answer
