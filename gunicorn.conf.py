"""gunicorn settings, read by the Procfile's command (Heroku) and by `make run`.

Chosen from `python -m bench.load` and `python -m bench.peak` on the project's 2-core machine (figures
in docs/performance.md, "Load"): a read's CPU cost is the same whatever the workers and
threads, a worker holds about 91 MB and does not grow over 10,000 requests, and the costliest
picture the limits let in takes a worker and the child that decodes it (app/isolated.py) to about
280 MB for the moment it is decoded.
"""
import ctypes
import os
import runpy
import shutil
import tempfile
from pathlib import Path

# The app's checks of its numbers, loaded by path: `import app` would load Flask and the models into
# the master, which only forks the workers that load them.
_settings = runpy.run_path(str(Path(__file__).resolve().parent / "app" / "settings.py"))


def setting(check: str, *args):
    """A variable read by one of app/settings.py's checks, or one line naming it and the server stopped."""
    try:
        return _settings[check](*args)
    except ValueError as error:
        raise SystemExit(f"gunicorn.conf.py: {error}") from None  # one line, not gunicorn's traceback


def whole(name: str, default: int, minimum: int = 1, most: int | None = None) -> int:
    return setting("whole", name, default, minimum, most)


def two_malloc_arenas() -> None:
    """glibc gives each thread a malloc arena of its own and keeps what a big picture freed there:
    after two 24-megapixel PNGs read at once by a worker's two threads, the worker stayed at 253 MB
    (peak 319 MB); with two arenas, 131 MB (peak 262 MB). The MALLOC_ARENA_MAX variable does the same
    but must be set before Python starts; mallopt here, in the master, holds for the workers it forks.
    (Measured when workers decoded pictures themselves; a decoding child now gives back all it took as it
    exits, and the arenas matter for the copies of the decoded picture the worker makes.)"""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, whole("MALLOC_ARENA_MAX", 2))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: its allocator, its own rules
        pass


two_malloc_arenas()

# The server's workers decode one large picture at a time between them (app/turn.py), through a lock
# file named here, in the master, for this server alone; the workers it forks inherit the variable. In a
# folder of its own (mode 0700), so that no other user can make or hold the file first; named once, so that
# a reload (SIGHUP re-reads this file) keeps it. A LARGE_PICTURE_LOCK set in the environment is used as it is.
_LOCK = runpy.run_path(str(Path(__file__).resolve().parent / "app" / "turn.py"))["PATH_VARIABLE"]
_OURS = f"digit-reader-{os.getpid()}-"  # the master's folder: its pid stays through a reload


def when_ready(server):
    """Made once the port is bound, just before the first workers are forked: a server stopped earlier (a bad
    setting, a port taken) never reaches on_exit, and had left its folder behind."""
    if _LOCK not in os.environ:
        os.environ[_LOCK] = str(Path(tempfile.mkdtemp(prefix=_OURS)) / "large-pictures.lock")


def on_exit(server):
    if _LOCK not in os.environ:
        return
    folder = Path(os.environ[_LOCK]).parent
    if folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith(_OURS):  # made here, not inherited
        shutil.rmtree(folder, ignore_errors=True)


def pre_request(worker, req):
    """gunicorn's own hook (it logs the request at debug level), and a handle on the body with which the app
    closes a connection whose body it did not read to its end (app/deadline.py): a 408, a malformed body, or
    an answer given before the body was read (a 413, 400 or 429)."""
    worker.log.debug("%s %s", req.method, req.path)
    req.body.close_connection = req.force_close


bind = f"0.0.0.0:{whole('PORT', 8000, most=65535)}"
# One worker per core: the work is CPU-bound numpy/Pillow/LiteRT, so more processes only add memory
# (about 91 MB each). Two workers and the master take about 210 MB of a 512 MB dyno, which leaves room for
# one worst-case picture at a time, and the server decodes one at a time whatever the worker
# (above; docs/performance.md, "Load").
# Heroku's buildpack sets WEB_CONCURRENCY by dyno size (2 on 512 MB dynos, 4 or more on larger ones).
workers = whole("WEB_CONCURRENCY", 2)
# A second thread receives the next upload and answers /healthz while the first reads an image;
# more threads did not raise throughput (the CPU is the limit) and each may hold a decoded picture.
threads = whole("GUNICORN_THREADS", 2)
# Named, not implied by threads > 1: with one thread gunicorn would switch to its sync worker, which
# closes every connection after its request (no keep-alive) and lets `timeout` cut requests short.
worker_class = "gthread"
# A read takes milliseconds (half a second for a 25-megapixel HEIC). With threads this is how long a
# worker's main loop may stop before the master replaces it, not a limit on a request: the upload
# deadline (app/deadline.py) bounds a body's arrival, and Heroku's router gives up at 30 s.
timeout = 30
# Heroku's Router 2.0 keeps its connections to the dyno open for 90 s of quiet; gunicorn's own
# default (2 s here) would close them first, and a request the router sends at that moment fails.
# An idle kept-alive connection waits in the worker's poller, not in one of its threads; served
# directly rather than behind a router, silent sockets would be kept that long too (GUNICORN_KEEPALIVE).
keepalive = whole("GUNICORN_KEEPALIVE", 100, minimum=0)
# Heroku sends SIGTERM and kills the dyno's processes 30 s later: requests in flight (an upload may take
# UPLOAD_SECONDS to arrive) get most of that, and the master still exits before the kill.
graceful_timeout = 25
# Memory did not grow over 10,000 requests (bench.load; 30,000 on an earlier host), so recycling is insurance against slow leaks in native
# libraries (LiteRT, libheif, Pillow's decoders) on paths the load test does not take. At full load
# (47 requests/s on the present host) a worker restarts about every 7 minutes and its 0.5 s start is lost in the noise;
# the jitter keeps the two workers from restarting together.
max_requests = 10000
max_requests_jitter = 1000
# Never the reloader or debug mode: nothing here turns them on, and create_app ignores FLASK_DEBUG.
reload = False
# gunicorn's control socket (for gunicornc) is one path per user, $HOME/.gunicorn/gunicorn.ctl:
# a second server on the machine (tests, a benchmark) took it over from the first. Nothing here uses it.
control_socket_disable = True
loglevel = setting("level", "LOG_LEVEL")  # gunicorn's own messages; the app's follow it too (app/__init__.py)
accesslog = "-"  # method, path, status, size, time and the router's request id: images are never logged
# gunicorn's default, then the time taken (ms) and Heroku's X-Request-ID, to match the router's log line.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms request=%({x-request-id}i)s'
