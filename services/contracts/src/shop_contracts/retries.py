"""Which answers are worth sending the same request again, for the two kinds of caller: deliberately not the same."""

SERVICE_RETRYABLE_STATUSES = frozenset({502, 503})
"""Answers a service retries at once, within the deadline of the request it is serving, when it calls another
service with a retryable request (a GET, or a POST with an Idempotency-Key: `shopkit.http.send_with_retries`).

Not 504: a timeout is the upstream (or one behind it) still busy with the request, maybe still doing the work; a
copy sent at once would queue behind it and take a second slot of a service that is already slow, and every layer
retrying would multiply the load on it. For the same reason a read timeout is not retried, nor a 503 that carries
`Retry-After` (a service shedding load). The caller passes the answer on; the customer decides."""

CUSTOMER_RETRYABLE_STATUSES = frozenset({502, 503, 504})
"""Answers after which a customer retries a checkout with the same Idempotency-Key: the payment may or may not
exist yet, and only the same key sent again tells which. 504 included: the customer is the end of the chain, nothing
else will retry for it, and it waits (a back-off, or what `Retry-After` says) before it does; the key makes a second
copy find the first payment instead of paying twice."""
