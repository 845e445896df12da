"""`make run`'s relay of a service's output to the launcher's log: each line whole, in order, under its source,
however the service's writes and the relay's reads cut the stream."""

import os
import threading
import time

import pytest

from shop_devtools.processes import Child, Instance
from shop_devtools.topology import BY_NAME

LONG = "x" * 100_000
"""Longer than a pipe holds: read in several pieces."""


def write_in_pieces(fd: int) -> None:
    """Lines cut mid-line and mid-character, a pause between the pieces, and a last line without its newline."""
    with open(fd, "wb", buffering=0) as pipe:
        for piece in [b"one\ntwo \xc3", b"\xa9\n" + LONG.encode(), b"\n\nlast, unfinished"]:
            pipe.write(piece)
            time.sleep(0.1)


def test_each_line_is_relayed_whole_in_order_under_its_source(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="shop_devtools.run")
    read, write = os.pipe()
    writer = threading.Thread(target=write_in_pieces, args=(write,))
    writer.start()

    with open(read, "rb") as stream:
        Child(Instance(BY_NAME["payment"], "payment-2", 1), {})._relay(stream)  # returns at the pipe's end

    writer.join()
    relayed = [(getattr(record, "source", None), record.getMessage()) for record in caplog.records]
    assert relayed == [("payment-2", line) for line in ["one", "two é", LONG, "", "last, unfinished"]]
