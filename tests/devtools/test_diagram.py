"""The architecture picture in the docs is the one the topology draws, and it shows every part."""

import pytest

from shop_devtools import diagram
from shop_devtools.topology import SERVICES
from shop_devtools.workspace import repository_root


def test_the_committed_picture_is_what_the_topology_draws() -> None:
    document = (repository_root() / diagram.DOCUMENT).read_text(encoding="utf-8")
    assert diagram.with_picture(document, diagram.mermaid()) == document, "run `make diagram` and commit the result"


def test_the_picture_shows_every_service_call_and_watcher() -> None:
    picture = diagram.mermaid()
    for service in SERVICES:
        assert f'{service.name}["{service.name} :{service.port}' in picture
        assert f'kubernetes -.->|"/healthz /ready"| {service.name}' in picture
        assert f'prometheus -.->|"/metrics"| {service.name}' in picture
        calls = {line.rsplit("| ", 1)[1] for line in picture.splitlines() if line.startswith(f"    {service.name} -->")}
        assert calls == set(service.upstreams) | ({"postgres"} if service.has_database else set())
    assert '-->|"HTTP + PAYMENT_CREDENTIAL"| catalog' in picture
    assert '-->|"/ops/ + OPERATOR_CREDENTIAL"| storefront' in picture


def test_markers_are_required() -> None:
    with pytest.raises(ValueError, match="markers"):
        diagram.with_picture("no markers here", diagram.mermaid())
    framed = f"before\n{diagram.BEGIN}\nold\n{diagram.END}\nafter\n"
    assert diagram.with_picture(framed, "new\n") == f"before\n{diagram.BEGIN}\nnew\n{diagram.END}\nafter\n"
