"""The payment service's own state, made by its lifespan and kept in its `shopkit.ServiceState`."""

from dataclasses import dataclass

from shop_payment.auth import JwksVerifier
from shop_payment.service import Payments


@dataclass(frozen=True)
class PaymentState:
    verifier: JwksVerifier
    payments: Payments
