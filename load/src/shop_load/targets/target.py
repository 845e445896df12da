"""The drill's `Target` interface: where the fault goes and how its effects are seen (make run's local payment
replicas, `shop_load.targets.choose`; one pod of a cluster, `shop_load.targets.cluster`), and where the target's shop
keeps the operator's credential (`CredentialKeeper`).
"""

import abc
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from shop_load.core import ops
from shop_load.core.records import InvariantResult, Mark, ReplicaSetSample

Clock = Callable[[], float]


class Target(abc.ABC):
    """Where the fault goes and how its effects are seen: the local process, or one pod of the cluster."""

    mode: str
    name: str | None = None
    url: str | None = None
    """The storefront, when the target knows where its shop is (the shop in containers); else the drill's --url."""
    notes: list[str]
    credentials: "CredentialKeeper"
    """Where the target's shop keeps the operator's credential."""

    @abc.abstractmethod
    async def inject(self, client: httpx.AsyncClient, fault: str, body: Mapping[str, Any] | None) -> None:
        """Sends the fault and records the injection mark."""

    @abc.abstractmethod
    def marks(self) -> list[Mark]:
        """Everything seen so far."""

    @abc.abstractmethod
    def recovered(self) -> bool:
        """Whether the fault phase can end before its duration."""

    @abc.abstractmethod
    def restarts(self) -> int | None:
        """Container restarts seen (None: unknown)."""

    @abc.abstractmethod
    async def finish(self, client: httpx.AsyncClient, *, wait: bool = True) -> None:
        """After the fault phase: leaves nothing broken behind (and waits for the target to be back)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stops following the target."""

    async def stopped(self) -> None:
        """Stops following the target and waits until its watchers ended: a probe cut off by its client's close
        would be a false mark."""
        self.stop()

    def replicasets(self) -> list[ReplicaSetSample]:
        return []

    def autoscaler(self) -> dict[str, Any] | None:
        """payment's HorizontalPodAutoscaler as the drill ends (None: there is none)."""
        return None

    def status(self) -> str:
        return ""

    async def checks(self) -> list[InvariantResult]:
        """What only this target shows, checked after the drill's invariants and reported beside them."""
        return []


class CredentialKeeper(Protocol):
    """Where a target's shop keeps the operator's credential its `/ops/` asks for."""

    def operator(self) -> ops.Operator | None:
        """The credential; None when there is none there."""

    def place(self) -> str:
        """Where that is, for a message (never the value)."""
