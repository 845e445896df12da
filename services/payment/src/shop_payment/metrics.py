from prometheus_client import Counter, Gauge

PAYMENTS = Counter("shop_payments_total", "Payments that reached a final status, by status", ["status"])
RECOVERED = Counter(
    "shop_payments_recovered_total", "Pending payments finished by someone other than their first owner", ["by"]
)
OLDEST_PENDING = Gauge("shop_payment_oldest_pending_seconds", "Age of the oldest pending payment (0: none)")

for _status in ("captured", "declined"):  # every series exists from the start, so increase() sees the first event
    PAYMENTS.labels(status=_status)
for _by in ("retry", "sweeper"):
    RECOVERED.labels(by=_by)
