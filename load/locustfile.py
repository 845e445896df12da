"""`locust -f load/locustfile.py`: the shop's customers, defined in `shop_load.locustfile`."""

from shop_load.locustfile import Shopper

__all__ = ["Shopper"]
