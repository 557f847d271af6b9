"""The upload deadline (app/deadline.py) in isolation; tests/test_server.py has it over real HTTP."""
import io
import socket

import pytest
from werkzeug.exceptions import RequestTimeout

from app.deadline import TimedBody


class Socket:
    """Records what the deadline does to gunicorn's socket."""

    def __init__(self):
        self.shut = []

    def shutdown(self, how):
        self.shut.append(how)


def test_a_body_still_arriving_at_the_deadline_is_cut_off():
    sock = Socket()
    body = TimedBody(io.BytesIO(b"abcdef"), sock, 6)
    assert body.read(2) == b"ab"
    body.expire()
    assert sock.shut == [socket.SHUT_RD]  # a read blocked on the socket returns at once
    with pytest.raises(RequestTimeout):
        body.read(4)


def test_a_body_already_in_is_left_alone_by_a_late_deadline():
    # The connection may be kept alive for the next request: shutting its reading side would cut that off.
    sock = Socket()
    body = TimedBody(io.BytesIO(b"abcdef"), sock, 6)
    assert body.read(6) == b"abcdef"
    body.expire()
    assert sock.shut == [] and body.read(1) == b""
    chunked = TimedBody(io.BytesIO(b"abc"), sock, None)  # no length: the end of the stream says it is all in
    assert chunked.read(10) == b"abc" and chunked.read(10) == b""
    chunked.expire()
    assert sock.shut == []
