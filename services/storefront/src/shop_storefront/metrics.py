from prometheus_client import Counter

GATEWAY_REQUESTS = Counter(
    "shop_gateway_requests",
    "Requests proxied under /api by upstream and outcome"
    " (success, client_error, server_error, unavailable, busy, timeout)",
    ["upstream", "outcome"],
)
GATEWAY_RETRIES = Counter(
    "shop_gateway_retries",
    "Extra tries of retryable requests after a connection error or a 502/503 answer, by upstream",
    ["upstream"],
)
