"""A turn taken by one thread of one process at a time: the server's rule that one large picture is
decoded at a time (app/images.py), kept across all of its workers.

Each worker had kept the rule for its own threads only, so a dyno's two workers could each decode the
costliest picture at once, and together with the master come to well over the 512 MB of a small
Heroku dyno. Across processes the turn is an flock() on a file that gunicorn.conf.py names for the
server, in the master, before it forks the workers (LARGE_PICTURE_LOCK): each worker opens the file
itself, since a descriptor inherited across fork would share its lock with the parent rather than wait
for it, and the kernel lets go of a dead worker's lock, so a worker killed mid-turn blocks no other.
Without the variable (the test client, a developer's `flask run`) the turn is the process's own.

The wait is bounded: four large pictures queued behind a slow one would otherwise hold every thread
of both workers, and /healthz and small pictures with them, for as long as it took. Waiting workers
try the file every 20 ms; a worker that has just given the turn up lets its next picture wait two of
those before trying, or its own queue, which takes the thread lock at once, would keep the turn from
the other worker's. A file (or its folder) removed while the server runs (a /tmp cleaner) is made
again by the next worker to open it; so a turn taken checks that its file is still the one at the
path, or takes the new one, and a worker that could not open the file tries again at its next turn.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time

PATH_VARIABLE = "LARGE_PICTURE_LOCK"
POLL_SECONDS = 0.02  # how often a waiting worker tries the file again (flock itself cannot time out)
log = logging.getLogger(__name__)


class Busy(Exception):
    """The turn did not come within the time allowed."""


class Turn:
    """A context manager (or acquire/release): one holder at a time among this process's threads and,
    when `path` names a file, among every process that locks the same file. `timeout` bounds the wait
    of `with turn:` (Busy after it); None waits as long as it takes."""

    def __init__(self, path: str | None = None, timeout: float | None = None):
        self.path = path or None
        self.timeout = timeout
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None
        self._given_up_at = float("-inf")  # when this process last gave the file up
        self._warned = False

    def acquire(self, timeout: float | None = None) -> bool:
        """Whether the turn was taken within `timeout` seconds (None: however long it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._threads.acquire(timeout=-1 if deadline is None else max(0.0, timeout)):
            return False  # first among this worker's threads, so that it waits on the file at most once
        try:
            if self._locked_file(deadline):
                return True
        except BaseException:
            self._unlock_file()
            self._threads.release()
            raise
        self._threads.release()
        return False

    def release(self) -> None:
        try:
            self._unlock_file()
        finally:
            self._threads.release()

    def _unlock_file(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._given_up_at = time.monotonic()

    def __enter__(self) -> Turn:
        if not self.acquire(self.timeout):
            raise Busy(f"no turn within {self.timeout} s")
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _locked_file(self, deadline: float | None) -> bool:
        """The file locked (or there is none to lock) before the deadline; under the thread lock."""
        wait = self._given_up_at + 2 * POLL_SECONDS - time.monotonic()
        if wait > 0 and self.path is not None:  # the other workers' turn to try first
            time.sleep(wait)
        while (fd := self._file()) is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(POLL_SECONDS)
                continue
            if self._still_at_path(fd):
                return True
            fcntl.flock(fd, fcntl.LOCK_UN)  # a lock on a removed file excludes no one: take the new one
            os.close(fd)
            self._pid = None
            log.warning("the large-picture lock file %s was removed or replaced; opened again", self.path)
        return True

    def _still_at_path(self, fd: int) -> bool:
        try:
            at_path, ours = os.stat(self.path), os.fstat(fd)
        except OSError:
            return False
        return (at_path.st_dev, at_path.st_ino) == (ours.st_dev, ours.st_ino)

    def _file(self) -> int | None:
        """This process's own descriptor of the file, or None without one."""
        if self.path is None:
            return None
        if self._pid != os.getpid():
            self._fd = None
            try:
                os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
                self._pid = os.getpid()
            except OSError as error:  # a read-only or full disk: this turn is the worker's own; tried again next time
                if not self._warned:
                    log.warning("large pictures take turns in this worker only: %s", error)
                    self._warned = True
        return self._fd
