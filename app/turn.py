"""A turn taken by one thread of one process at a time: the server's rule that one large picture is
decoded at a time (app/images.py), kept across all of its workers.

Each worker had kept the rule for its own threads only, so a dyno's two workers could each decode the
costliest picture at once, and together with the master come to well over the 512 MB of a small
Heroku dyno. Across processes the turn is an flock() on a file that gunicorn.conf.py names for the
server, in the master, before it forks the workers (LARGE_PICTURE_LOCK): each worker opens the file
itself, since a descriptor inherited across fork would share its lock with the parent rather than wait
for it, and the kernel lets go of a dead worker's lock, so a worker killed mid-turn blocks no other.
Without the variable (the test client, a developer's `flask run`) the turn is the process's own.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading

PATH_VARIABLE = "LARGE_PICTURE_LOCK"
log = logging.getLogger(__name__)


class Turn:
    """A context manager (or acquire/release): one holder at a time among this process's threads and,
    when `path` names a file, among every process that locks the same file."""

    def __init__(self, path: str | None = None):
        self.path = path or None
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None

    def acquire(self) -> None:
        self._threads.acquire()  # first among this worker's threads, so that it waits on the file at most once
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks without holding Python's lock
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def __enter__(self) -> Turn:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _file(self) -> int | None:
        """This process's own descriptor of the file (opened under the thread lock), or None without one."""
        if self.path is None:
            return None
        if self._pid != os.getpid():
            self._pid, self._fd = os.getpid(), None
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as error:  # a read-only or full disk: the worker's own turn still holds
                log.warning("large pictures take turns in this worker only: %s", error)
        return self._fd
