"""Shoppers for Locust: they browse, search and look at products far more often than they pay, as in a real shop.

Each simulated customer registers and logs in when it starts, keeps the products it has seen with their stock,
and pays for baskets of products that had stock, with an `Idempotency-Key` per checkout. A 502/503/504 or a
connection error is retried with the same key and body (at most `CHECKOUT_ATTEMPTS` tries), as a careful client
does; the attempts that are retried show up under their own name, `POST /api/payments (retried)`, so the
failures column only counts checkouts that never got an answer. A 409 "insufficient stock" is the shop's correct
answer to a basket that sold out meanwhile, not a failure; neither is a declined card (402, one checkout in 20).

Run it with `make load`, or: `locust -f load/locustfile.py --headless -u 20 -r 5 -t 60s --host <the storefront's URL>`.
"""

import random
import time
from collections.abc import Mapping
from typing import Any, cast

from locust import HttpUser, between, task

from shop_load.core import shopping

CHECKOUT_ATTEMPTS = 4
DECLINED_SHARE = 0.05
PAYMENTS = "/api/payments"


class Shopper(HttpUser):
    wait_time = between(0.5, 2.5)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.products: dict[str, Mapping[str, Any]] = {}
        self.auth: dict[str, str] = {}
        credentials = shopping.new_credentials()
        with self.client.post("/api/users", json=credentials, name="/api/users", catch_response=True) as created:
            if created.status_code != 201:
                created.failure(f"registration answered {created.status_code}")
                return
        login = {"email": credentials["email"], "password": credentials["password"]}
        with self.client.post("/api/tokens", json=login, name="/api/tokens", catch_response=True) as token:
            body = shopping.json_body(token)
            if token.status_code != 200 or not isinstance(body, dict):
                token.failure(f"login answered {token.status_code}")
                return
            self.auth = {"Authorization": f"Bearer {body['access_token']}"}
        self._remember(self.client.get("/api/products?limit=100", name="/api/products"))

    def _remember(self, response: Any) -> None:
        body = shopping.json_body(response)
        if isinstance(body, dict):
            self.products |= {product["sku"]: product for product in body.get("items", [])}

    @task(shopping.TASK_WEIGHTS["browse"])
    def browse(self) -> None:
        offset = self.rng.choice((0, 0, 0, 10, 20))
        self._remember(self.client.get(f"/api/products?limit=10&offset={offset}", name="/api/products"))

    @task(shopping.TASK_WEIGHTS["search"])
    def search(self) -> None:
        term = self.rng.choice(shopping.SEARCH_TERMS)
        self._remember(self.client.get(f"/api/products?q={term}", name="/api/products?q=[term]"))

    @task(shopping.TASK_WEIGHTS["view"])
    def view(self) -> None:
        if not self.products:
            return
        sku = self.rng.choice(list(self.products))
        body = shopping.json_body(self.client.get(f"/api/products/{sku}", name="/api/products/[sku]"))
        if isinstance(body, dict) and "sku" in body:
            self.products[sku] = body

    @task(shopping.TASK_WEIGHTS["orders"])
    def orders(self) -> None:
        if self.auth:
            self.client.get("/api/payments?limit=10", headers=self.auth, name=PAYMENTS + " (mine)")

    @task(shopping.TASK_WEIGHTS["checkout"])
    def checkout(self) -> None:
        basket = shopping.pick_basket(list(self.products.values()), self.rng)
        if not self.auth or not basket:
            return
        body = {"items": basket, "card_number": shopping.card_for(self.rng, DECLINED_SHARE)}
        headers = {**self.auth, "Idempotency-Key": shopping.new_idempotency_key("locust")}
        for attempt in range(1, CHECKOUT_ATTEMPTS + 1):
            with self.client.post(PAYMENTS, json=body, headers=headers, name=PAYMENTS, catch_response=True) as response:
                answer = shopping.json_body(response)
                outcome = shopping.checkout_outcome(response.status_code or None, answer)
                if outcome in {"captured", "declined", "out_of_stock"}:
                    response.success()
                    if outcome == "out_of_stock":
                        for line in basket:  # sold out meanwhile: look again before the next basket
                            self.products.pop(line["sku"], None)
                    return
                if outcome == "rejected" or attempt == CHECKOUT_ATTEMPTS:
                    response.failure(f"checkout answered {response.status_code}: {str(answer)[:200]}")
                    return
                cast("dict[str, Any]", response.request_meta)["name"] = PAYMENTS + " (retried)"
                response.success()
            time.sleep(min(2.0, 0.25 * 2**attempt))
