from shopkit import NotFoundError, RetryLaterError, ShopError, UpstreamError


class ApiRouteNotFound(NotFoundError):
    title, slug = "No such API", "api-route-not-found"


class UnforwardableHeader(ShopError):
    """A header the gateway received but cannot send on (a control character in its value, say)."""

    title, slug = "Malformed request header", "malformed-header"


class UpstreamUnavailable(UpstreamError):
    title, slug = "Upstream service unavailable", "upstream-unavailable"


class UpstreamTimeout(ShopError):
    status, title, slug = 504, "Upstream service timed out", "upstream-timeout"


class UpstreamBusy(RetryLaterError):
    """Every connection to that service is in use (its bulkhead is full): shed here, as the service itself would."""

    title, slug = "Upstream service busy", "upstream-busy"
