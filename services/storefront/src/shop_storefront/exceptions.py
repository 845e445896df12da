from shopkit import NotFoundError, ShopError, UpstreamError


class ApiRouteNotFound(NotFoundError):
    title, slug = "No such API", "api-route-not-found"


class UpstreamUnavailable(UpstreamError):
    title, slug = "Upstream service unavailable", "upstream-unavailable"


class UpstreamTimeout(ShopError):
    status, title, slug = 504, "Upstream service timed out", "upstream-timeout"
