"""A request's body must arrive within UPLOAD_SECONDS (WSGI middleware around the app).

gunicorn's threads read a body from a blocking socket with no time limit, and Heroku's router
passes bodies through unbuffered: a client that sent a byte now and then held a thread for as
long as it liked, and two of them held a worker's two threads, so that it answered no one. A
socket timeout would not do: it bounds each wait for a byte, not the whole body. So when the
deadline passes, a timer shuts the socket's reading side: the blocked read returns, the request
is answered 408, and the connection reads nothing more from that client.

gunicorn also raises its own parse errors from a body's read (a malformed chunk of a chunked
upload): those are the client's mistake, a 400, not the app's 500.

After a 408 or a body that failed to parse, where the next request would begin on the connection is
unknown, gunicorn would still answer "Connection: keep-alive" and then read the rest of the body as a
request of its own (its HTML 400 "Invalid HTTP request line" after the JSON 408). After any other
answer that leaves the body unread (a 413 above the size limit, a 400 for a bad kind, a 429, a GET
sent with a body), it would drain up to 64 kB of it for up to 5 s, holding a thread, and then close
the connection it had just called kept alive. So in all these cases the connection is closed, through
the handle that gunicorn.conf.py's pre_request hook puts on the body (`close_connection`), and the
answer says "Connection: close".

Headers sent slowly are not covered: gunicorn reads them before the app is called. Heroku's
router passes a request on only once its headers are in; served directly, a buffering proxy is
the remedy for both.
"""
from __future__ import annotations

import socket
import threading

from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadRequest, RequestTimeout

TOO_SLOW = "The upload took too long to arrive."


class TimedBody:
    """wsgi.input that ends when `expire` is called (by the timer), with a 408 to its reader.

    Once the whole body is in (`length` bytes, or the end of a chunked one), or the app has
    answered, `finish` makes a late `expire` do nothing: the connection may be kept alive for the
    client's next request, which shutting its reading side would cut off.
    """

    def __init__(self, stream, sock: socket.socket | None, length: int | None):
        self.stream, self.sock, self.length = stream, sock, length
        self.received, self.expired, self.finished, self.failed = 0, False, False, False
        self.complete = False  # the whole body was read
        self.lock = threading.Lock()

    def expire(self) -> None:
        with self.lock:
            if self.finished:
                return
            self.expired = True
            if self.sock is not None:
                try:
                    self.sock.shutdown(socket.SHUT_RD)  # wakes a read blocked on the socket, which then ends
                except OSError:
                    pass

    def finish(self) -> None:
        with self.lock:
            self.finished = True

    def _call(self, method, *args):
        if self.expired:
            raise RequestTimeout(TOO_SLOW)
        try:
            data = method(*args)
        except ParseException as error:
            self.failed = True
            raise BadRequest(f"The upload is not valid HTTP ({type(error).__name__}).") from None
        except OSError:  # gunicorn's NoMoreData when the timer shut the socket, or a client gone
            self.failed = True
            if self.expired:
                raise RequestTimeout(TOO_SLOW) from None
            raise
        with self.lock:  # against a timer firing between the check and the count
            if self.expired:  # the read was cut short: what it returned is not the whole body
                raise RequestTimeout(TOO_SLOW)
            self.received += sum(map(len, data)) if isinstance(data, list) else len(data)
            asked_nothing = bool(args) and args[0] == 0  # read(0) is b"" whatever is left
            if (not data and not asked_nothing) or (self.length is not None and self.received >= self.length):
                self.finished = self.complete = True
        return data

    def read(self, size: int = -1) -> bytes:
        return self._call(self.stream.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._call(self.stream.readline, size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._call(self.stream.readlines, hint)

    def __iter__(self):
        while line := self.readline():
            yield line


class UploadDeadline:
    def __init__(self, wsgi_app, seconds: float):
        self.wsgi_app, self.seconds = wsgi_app, seconds

    def __call__(self, environ, start_response):
        length = int(environ["CONTENT_LENGTH"]) if environ.get("CONTENT_LENGTH", "").isdigit() else None
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()  # gunicorn takes "Chunked" too
        close_connection = getattr(environ["wsgi.input"], "close_connection", None)  # under gunicorn only
        body = TimedBody(environ["wsgi.input"], environ.get("gunicorn.socket"), None if chunked else length)
        environ["wsgi.input"] = body
        if not (chunked or length):
            return self.wsgi_app(environ, start_response)
        timer = threading.Timer(self.seconds, body.expire)
        timer.daemon = True
        timer.start()
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            body.finish()
            timer.cancel()
            if close_connection is not None and (body.expired or body.failed or not body.complete):
                close_connection()  # before gunicorn writes the headers, which then say "close"
