from prometheus_client import Counter

RESERVATIONS = Counter(
    "shop_reservations_total",
    "Reservation state changes by outcome (held, committed, released, expired, rejected)",
    ["outcome"],
)

for _outcome in ("held", "committed", "released", "expired", "rejected"):  # every series exists from the start
    RESERVATIONS.labels(outcome=_outcome)
