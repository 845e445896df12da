"""`PAYMENT_REPLICAS` in make run's settings: which processes run where, and what storefront is told. Pure."""

import pytest

from shop_devtools.credentials import NAMES, new_credentials
from shop_devtools.kubelet import pod_specs
from shop_devtools.processes import LaunchError
from shop_devtools.run import service_env
from shop_devtools.runconfig import Config
from shop_devtools.topology import SERVICES

CREDENTIALS = new_credentials()


def config(**env: str) -> Config:
    return Config.from_env({"SHOP_DATA_DIR": "/tmp/shop-replicas-test", **env})


def test_payment_runs_the_deployments_replicas_by_default_and_one_is_named_as_its_service() -> None:
    assert len(config().instances("payment")) == pod_specs()["payment"].replicas == 3
    names = [(instance.name, instance.port) for instance in config(PAYMENT_REPLICAS="1").instances()]
    assert names == [("storefront", 8080), ("catalog", 8081), ("users", 8082), ("payment", 8083)]
    assert config(PAYMENT_REPLICAS="1").url("payment") == "http://127.0.0.1:8083"


def test_replicas_take_the_ports_after_payments_and_storefront_gets_them_all() -> None:
    three = config(PAYMENT_REPLICAS="3")
    payments = three.instances("payment")
    assert [(p.name, p.port) for p in payments] == [("payment-1", 8083), ("payment-2", 8084), ("payment-3", 8085)]
    env = service_env(three.instances("storefront")[0], three, {}, "key", CREDENTIALS, {})
    assert env["STOREFRONT_PAYMENT_URL"] == "http://127.0.0.1:8083,http://127.0.0.1:8084,http://127.0.0.1:8085"
    second = service_env(payments[1], three, {"payment": "postgresql://payment"}, "key", CREDENTIALS, {})
    assert (second["PORT"], second["DATABASE_URL"]) == ("8084", "postgresql://payment")


@pytest.mark.parametrize("value", ["0", "6", "two", "-1"])
def test_a_replica_count_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(LaunchError, match="PAYMENT_REPLICAS must be a number from 1 to 5"):
        config(PAYMENT_REPLICAS=value)


def test_a_replica_on_another_services_port_is_refused() -> None:
    with pytest.raises(LaunchError, match="same port"):
        config(PAYMENT_REPLICAS="2", SHOP_PAYMENT_PORT="8090", SHOP_CATALOG_PORT="8091")


def test_each_process_gets_the_credentials_it_reads_and_the_environment_wins() -> None:
    shop = config(PAYMENT_REPLICAS="1")
    databases = {service.name: f"postgresql://{service.name}" for service in SERVICES}
    for service in SERVICES:
        (instance,) = shop.instances(service.name)
        env = service_env(instance, shop, databases, "key", CREDENTIALS, {})
        assert {name: env[name] for name in NAMES if name in env} == {
            name: CREDENTIALS[name] for name in service.credentials
        }, service.name
    (payment,) = shop.instances("payment")
    rotated = service_env(payment, shop, databases, "key", CREDENTIALS, {"PAYMENT_CREDENTIAL": "new,old"})
    assert rotated["PAYMENT_CREDENTIAL"] == "new,old"
