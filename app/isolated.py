"""app.images.decode_image in a child process, so that what no limit foresaw costs a request, not the worker.

Image decoders are large C libraries fed with strangers' bytes. Each way found so far for a small file
to take minutes, gigabytes or the process down is refused before decoding (app/parts.py,
app/images.py), but finding them took eight reviews, and the next one would take the worker with
every request it holds. So each upload is decoded in a child forked for it, under a ceiling on the
memory it may add and on its CPU time: a decoder that crashes, runs out of either or hangs kills the
child, the request gets a 4xx (a 503 where the child was killed from outside), and the worker goes on
serving.

The fork shares the worker's memory until written; with the child's first writes, its exit and the
worker's own first writes after it, a child costs 6 to 34 ms a picture on the project's machine (docs/performance.md,
"Runs before and after"). The decoded picture (RGB, at most 2,048 pixels a side) comes back through a pipe. The worker's
one-large-picture-at-a-time rule (app/images.py, app/turn.py) is kept by the worker: the child asks for its turn
and waits. Elsewhere than on Linux (a developer's macOS or Windows), the picture is decoded in the worker.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from app import images
from app.images import ImageError

log = logging.getLogger(__name__)  # under Flask's own logger ("app"), so its lines go where the app's do
# What a child may add to the worker's memory (its writable data, which counts the decoder's buffers but
# not the pages it shares with the worker). The costliest pictures the limits let in add about 180 MB to
# the child's resident memory (docs/performance.md, "Worst-case memory") and need up to about 212 MB of
# this allowance, which also counts what malloc reserved and has not touched (found by lowering it until
# they were refused); above it, allocations fail and the upload is refused (413).
MEMORY_BYTES = 300_000_000
# CPU seconds a child may spend. The costliest picture decodes in about half a second here.
CPU_SECONDS = 10
# Its wall-clock time (past its turn), for a child that stops without using CPU.
WALL_SECONDS = CPU_SECONDS + 5
# The worker's own signal handlers (gunicorn's) must not run in a child, which is not a worker.
WORKER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                  signal.SIGWINCH, signal.SIGABRT, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)
STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)  # ignored by a child
# How a decoder dies of a fault of its own (a crash, an abort on a corrupted heap): the file's doing, a 400.
DECODER_FAULTS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE)
LARGE, GO, DONE, REFUSED, FAILED = b"L", b"G", b"D", b"R", b"F"  # the child's messages (and the worker's GO)
PIPE_BYTES = 1 << 20
HEADER = struct.Struct("<I")  # the length of the JSON header that follows each message but LARGE


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """As app.images.decode_image, run in a child: an upright RGB image, or ImageError."""
    if sys.platform != "linux":  # the limits and figures below are Linux's (/proc, RLIMIT_DATA, glibc)
        return images.decode_image(data, max_pixels)
    began = time.monotonic()
    pid, to_worker, to_child = forked(data, max_pixels)
    turn, status = None, None
    reader = Reader(to_worker, time.monotonic() + WALL_SECONDS)
    try:
        message = reader.read(1)
        if message == LARGE:  # wait for the server's turn; the child waits without using its time
            waiting = images.one_large_at_a_time
            if not waiting.acquire(waiting.timeout):
                raise ImageError(503, images.BUSY)  # the finally below ends the child
            turn = waiting
            try:
                os.write(to_child, GO)
            except BrokenPipeError:  # it died while it waited
                raise ChildDied() from None
            reader.deadline = time.monotonic() + WALL_SECONDS
            message = reader.read(1)
        if message in (DONE, REFUSED, FAILED):
            # JSON, not pickle: a decoder taken over in the child must not run code in the worker through it.
            header = json.loads(bytes(reader.read(HEADER.unpack(reader.read(HEADER.size))[0])))
            if message == REFUSED:
                raise ImageError(*header)
            if message == FAILED:  # a bug of ours, not the file's: the worker's 500, with the child's trace
                raise RuntimeError(f"decoding failed in its child process:\n{header}")
            mode, size, original_size, length, added_mb = header
            image = Image.frombytes(mode, tuple(size), reader.read(length))
            image.info["original_size"] = tuple(original_size)
            log.debug("decoded %dx%d in a child process in %.0f ms, taking %.0f MB beyond the worker's%s",
                      *original_size, (time.monotonic() - began) * 1000, added_mb,
                      ", after its turn" if turn is not None else "")
            return image
        raise ChildDied()
    except ChildDied:
        status = ended(pid, kill=reader.timed_out)
        raise died(status, reader.timed_out) from None
    finally:
        if status is None:  # it answered and is exiting, or the worker stopped listening: either way, gone
            ended(pid, kill=True)
        if turn is not None:
            turn.release()
        os.close(to_worker)
        os.close(to_child)


def forked(data: bytes, max_pixels: int) -> tuple[int, int, int]:
    """The child, started: its pid, the worker's end of the pipe it answers on, and of the one it waits on.
    Nothing is left open when the fork fails (EAGAIN at the process limit, ENOMEM)."""
    opened = []
    try:
        to_worker = os.pipe()
        opened += to_worker
        to_child = os.pipe()
        opened += to_child
        try:  # a 12-megapixel photo's pixels come back in a tenth of the writes of the default 64 kB pipe
            fcntl.fcntl(to_worker[1], fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # above what the system lets a user ask (/proc/sys/fs/pipe-max-size)
            pass
        # Blocked until the child has set its own handlers: gunicorn's must never run there.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:  # the child: never returns
                child(data, max_pixels, to_worker[1], to_child[0])
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
    os.close(to_worker[1])
    os.close(to_child[0])
    return pid, to_worker[0], to_child[1]


class ChildDied(Exception):
    """The child stopped without an answer: it crashed, ran out of a limit, or was too slow."""


class Reader:
    """Reads exactly what was asked from the child's pipe, or raises ChildDied at its end or at the deadline."""

    def __init__(self, fd: int, deadline: float):
        self.fd, self.deadline, self.timed_out = fd, deadline, False
        self.poller = select.poll()  # not select(), which fails on descriptors above 1,023 (a busy worker's)
        self.poller.register(fd, select.POLLIN)

    def read(self, length: int) -> memoryview:
        buffer = memoryview(bytearray(length))
        got = 0
        while got < length:
            left = self.deadline - time.monotonic()
            if left <= 0 or not self.poller.poll(left * 1000):
                self.timed_out = True
                raise ChildDied()
            count = os.readv(self.fd, [buffer[got:]])
            if count == 0:
                raise ChildDied()
            got += count
        return buffer


def ended(pid: int, kill: bool) -> int:
    """The child's wait status, killing it first where asked."""
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:  # already reaped
        return 0


def died(status: int, timed_out: bool) -> Exception:
    """What to answer for a child that ended without answering."""
    killed_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    if timed_out or killed_by == signal.SIGXCPU:
        return ImageError(413, f"The image took too long to decode (the limit is {CPU_SECONDS} s of CPU, or "
                               f"{WALL_SECONDS} s in all); pictures take well under one.")
    if killed_by in DECODER_FAULTS:
        return ImageError(400, "The image could not be decoded: the decoder failed on it (the file is damaged or malformed).")
    if killed_by is not None:  # killed from outside: the system out of memory, the dyno stopping
        return ImageError(503, "The server could not decode the image just now; try again.")
    return RuntimeError(f"the decoding child exited with status {os.waitstatus_to_exitcode(status)} without answering")


def child(data: bytes, max_pixels: int, to_worker: int, from_worker: int) -> None:
    """Decode, answer the worker, exit. Never returns, whatever happens: the worker's code must not run here."""
    status = 1
    try:
        close_all_but(to_worker, from_worker)  # first: another thread's child must see its own pipe's end
        for number in WORKER_SIGNALS:
            # Heroku sends SIGTERM to every process of a stopping dyno: the worker finishes its requests
            # (gunicorn's graceful shutdown), and their children with them. The worker bounds a child's time.
            signal.signal(number, signal.SIG_IGN if number in STOPPING else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_SIGNALS)
        # Pillow warns once for each entry of a damaged EXIF block it skips: a 28 kB JPEG made 1,300 lines
        # of the server's log. What the file earns is the answer's (and its refusal's log line) to say.
        warnings.simplefilter("ignore")
        limit(resource.RLIMIT_CORE, 0)  # a crash is expected here, not a core dump
        limit(resource.RLIMIT_CPU, CPU_SECONDS)  # then SIGXCPU
        # Counted from what malloc holds free: a decoder reusing it does not grow VmData, and should still count.
        limit(resource.RLIMIT_DATA, status_kb("VmData") * 1024 - malloc_free_bytes() + MEMORY_BYTES)
        release_free_memory()
        try:  # the peak (VmHWM) is inherited from the worker: from here, this decoding's alone
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        shared_kb = status_kb("VmRSS")  # the worker's pages, mapped here until written

        @contextmanager
        def my_turn():
            os.write(to_worker, LARGE)
            if os.read(from_worker, 1) != GO:
                raise SystemExit(1)
            yield

        with os.fdopen(to_worker, "wb") as pipe:
            try:
                image = images.decode_image(data, max_pixels, one_at_a_time=my_turn())
                pixels = image.tobytes()
                added_mb = (status_kb("VmHWM") - shared_kb) / 1024  # what decoding took beyond the worker's pages
                message, header = DONE, (image.mode, image.size, image.info["original_size"], len(pixels), added_mb)
            except ImageError as error:
                message, header, pixels = REFUSED, (error.status, error.message), b""
            except MemoryError:
                message, header, pixels = REFUSED, (413, images.OUT_OF_MEMORY), b""
            except Exception:  # noqa: BLE001 - any other is a bug, reported as the worker's 500
                message, header, pixels = FAILED, traceback.format_exc(), b""
            encoded = json.dumps(header).encode()
            pipe.write(message + HEADER.pack(len(encoded)) + encoded)
            pipe.write(pixels)
        status = 0
    finally:
        os._exit(status)


def close_all_but(*kept: int) -> None:
    """Close every inherited descriptor beyond stdin, stdout, stderr and `kept`: the worker's listening
    socket and its clients' connections are not the child's to touch, and a connection the worker
    closes must not stay open for as long as a child holds a copy of it."""
    low = 3
    for fd in sorted(kept):
        os.closerange(low, fd)
        low = fd + 1
    most = resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # no descriptor is numbered at or above it
    os.closerange(low, most if 0 < most < 1 << 24 else 1 << 24)


def limit(kind: int, value: int) -> None:
    """Lower a resource limit to value, or to the hard limit the platform already sets, if lower."""
    hard = resource.getrlimit(kind)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, hard))


def release_free_memory() -> None:
    """Hand back the heap's free pages, which are the worker's until written: a decoder reusing them
    would copy each it touched, unseen by the RSS figures. Fresh pages cost less and are counted."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_free_bytes() -> int:
    """The bytes malloc holds free in its arenas (glibc's mallinfo2), or 0 where it cannot tell."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):  # not glibc, or older than 2.33
        return 0
    mallinfo2.restype = MallInfo2
    return mallinfo2().fordblks


def status_kb(field: str) -> int:
    """A figure of /proc/self/status in kB: VmData is what RLIMIT_DATA counts (shared pages and all),
    VmRSS the resident pages, VmHWM their peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0
