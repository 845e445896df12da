"""An oversized body is refused with a 413 the client can read, however it sends the body."""

import json
import socket
import urllib.error
import urllib.request

from tests.process.conftest import StartService

THREE_MIB_BODY = json.dumps({"items": [{"sku": "A", "quantity": 1}], "card_number": "4" * (3 * 1024 * 1024)}).encode()


def test_a_client_still_sending_reads_its_413(start_service: StartService) -> None:
    """urllib sends the whole body before it reads: the server reads and drops the rest before answering, or the
    client would get a reset instead of the answer (it did in 2 runs of 3 before)."""
    storefront = start_service("storefront")
    answers = []
    for _ in range(10):
        request = urllib.request.Request(  # noqa: S310 (a test's own http:// URL)
            storefront.url + "/api/payments", data=THREE_MIB_BODY, headers={"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310
        except urllib.error.HTTPError as error:
            answers.append((error.code, error.headers["content-type"], json.loads(error.read())["status"]))
        except OSError as error:
            answers.append((0, type(error).__name__, 0))
    assert answers == [(413, "application/problem+json", 413)] * 10


def test_a_client_that_expects_100_continue_is_answered_before_it_sends(start_service: StartService) -> None:
    """curl asks before sending a large body: the answer is the 413 itself, not a `100 Continue` to send it."""
    storefront = start_service("storefront")
    head = (
        f"POST /api/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(THREE_MIB_BODY)}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", storefront.port), timeout=10) as connection:
        connection.sendall(head.encode())  # and no body
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
