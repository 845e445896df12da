"""The drill's invariants judged from what was seen (`shop_load.invariants` says what each one means and fetches
what they are judged from): pure functions of the checkouts the customers made and the API's answers at the end.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from shop_contracts import CUSTOMER_RETRYABLE_STATUSES
from shop_load.core.records import Checkout, InvariantResult, judged
from shop_load.core.shopping import payment_of

ANSWERED = {"captured": 201, "declined": 402}
DESCRIPTIONS = {
    "answered_payments_stored": "every payment a customer was answered for exists exactly once with that status",
    "one_payment_per_key": "no idempotency key has two payments",
    "stock_conserved": "stock + held + sold = initial stock for every product",
}

Answer = tuple[int | None, Any]


def _result(name: str, problems: list[str], ok_detail: str) -> InvariantResult:
    return judged(name, DESCRIPTIONS[name], problems, ok_detail)


def check_answered_payments(checkouts: Sequence[Checkout], fetched: Mapping[str, Answer]) -> InvariantResult:
    problems, answered = [], [c for c in checkouts if c.outcome in ANSWERED]
    for checkout in answered:
        status, body = fetched.get(checkout.key, (None, None))
        if status != 200 or not isinstance(body, Mapping):
            problems.append(f"payment {checkout.payment_id} (key {checkout.key}) answered {status} to its customer")
        elif str(body.get("id")) != checkout.payment_id:
            problems.append(f"payment {checkout.payment_id} came back as {body.get('id')}")
        elif body.get("status") != checkout.outcome:
            problems.append(
                f"payment {checkout.payment_id} (key {checkout.key}) was answered {checkout.outcome} "
                f"but is stored as {body.get('status')}"
            )
    return _result("answered_payments_stored", problems, f"{len(answered)} answered payments found as answered")


def check_one_payment_per_key(
    checkouts: Sequence[Checkout], replays: Mapping[str, Answer], listed: Mapping[int, Sequence[str]]
) -> InvariantResult:
    problems = []
    expected: dict[int, dict[str, str]] = {}  # customer → payment id → key
    for checkout in checkouts:
        status, body = replays.get(checkout.key, (None, None))
        payment = payment_of(status, body)
        if checkout.outcome in ANSWERED:
            if payment is None:
                problems.append(f"key {checkout.key} sent again answered {status}, not its payment")
                continue
            if str(payment.get("id")) != checkout.payment_id or status != ANSWERED[checkout.outcome]:
                problems.append(
                    f"key {checkout.key} sent again gave payment {payment.get('id')} ({status}), "
                    f"first {checkout.payment_id} ({checkout.status})"
                )
            ids: list[str | None] = [checkout.payment_id, str(payment.get("id"))]
        elif checkout.outcome in {"failed", "pending"}:  # the customer gave up: finished by sending the key again
            if status is None or status in CUSTOMER_RETRYABLE_STATUSES:
                problems.append(f"key {checkout.key} still has no final answer ({status})")
                continue
            ids = [str(payment.get("id"))] if payment else []
        else:
            continue
        owner = expected.setdefault(checkout.customer, {})
        for payment_id in filter(None, ids):
            if (other := owner.setdefault(payment_id, checkout.key)) != checkout.key:
                problems.append(f"payment {payment_id} is the answer to two keys: {other} and {checkout.key}")
    total = 0
    for customer in sorted({c.customer for c in checkouts}):
        listed_ids = listed.get(customer, [])
        total += len(listed_ids)
        if len(listed_ids) != len(set(listed_ids)):
            problems.append(f"customer {customer}'s payment list repeats a payment")
        for payment_id in sorted(set(listed_ids) - set(expected.get(customer, {}))):
            problems.append(f"customer {customer} has payment {payment_id} that none of their keys answers with")
    detail = f"{sum(map(len, expected.values()))} payments expected from the keys, {total} listed, one per key"
    return _result("one_payment_per_key", problems, detail)


def check_stock(
    initial: Sequence[Mapping[str, Any]],
    final: Sequence[Mapping[str, Any]],
    *,
    elapsed_seconds: float,
    reservation_ttl_seconds: float,
) -> InvariantResult:
    problems, after, extra_held = [], {row["sku"]: row for row in final}, 0
    for row in initial:
        now = after.get(row["sku"])
        if now is None:
            problems.append(f"{row['sku']} is gone from the inventory")
            continue
        before_total, now_total = (counts["stock"] + counts["held"] + counts["sold"] for counts in (row, now))
        if now_total != before_total:
            problems.append(
                f"{row['sku']}: stock {now['stock']} + held {now['held']} + sold {now['sold']} = {now_total}, "
                f"was {before_total}"
            )
        extra_held += max(0, now["held"] - row["held"])
    if extra_held and elapsed_seconds >= reservation_ttl_seconds:
        problems.append(
            f"{extra_held} units still held after a {elapsed_seconds:.0f} s run, longer than the "
            f"{reservation_ttl_seconds:.0f} s reservation TTL: a reservation did not expire"
        )
    young = f"; {extra_held} units still held by reservations younger than the {reservation_ttl_seconds:.0f} s TTL"
    return _result("stock_conserved", problems, f"{len(initial)} products conserved" + (young if extra_held else ""))
