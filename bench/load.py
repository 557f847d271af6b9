"""Load on the real server: gunicorn started as the Procfile starts it, on loopback, driven by concurrent clients.

    .venv/bin/pip install -r bench/requirements.txt     # psutil
    .venv/bin/python -m bench.load --clients 8 --requests 10000 --max-requests 0
    .venv/bin/python -m bench.load --workers 2 --threads 4 --duration 30

Prints the time from starting gunicorn to its first answer (/healthz, then /predict), the number
of requests, the throughput, the p50/p95/p99 latency seen by the clients, the errors (anything but
a 200 with a number, or a failed connection), and each worker's resident memory (RSS) after its
first requests and at the end. Each client is a thread with its own keep-alive connection posting
the SVHN test photos of tests/fixtures (raw PNG bodies) one after another, as fast as answers come.
The clients run on the same machine as the server, so they take some of its CPU.

--max-requests 0 turns off gunicorn's worker recycling, to see how a worker's memory grows over a
long run; without it the settings of gunicorn.conf.py apply. Stops after --requests or --duration,
whichever comes first.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from bench.speed import percentile

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile_command() -> list[str]:
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    return shlex.split(line.split(":", 1)[1])


def post(connection: http.client.HTTPConnection, data: bytes) -> bool:
    connection.request("POST", "/predict", body=data, headers={"Content-Type": "image/png"})
    response = connection.getresponse()
    body = response.read()
    return response.status == 200 and isinstance(json.loads(body).get("number"), str)


def wait_for(port: int, started: float, process: subprocess.Popen, timeout: float = 60) -> float:
    """Seconds from `started` to the first 200 from /healthz."""
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        if process.poll() is not None or time.perf_counter() - started > timeout:
            process.kill()
            sys.exit("gunicorn did not start:\n" + process.communicate()[1].decode(errors="replace")[-2000:])
        time.sleep(0.02)


def workers_rss(master: psutil.Process) -> dict[int, float]:
    return {child.pid: child.memory_info().rss / 2**20 for child in master.children()}


def workers_cpu(master: psutil.Process) -> float:
    """CPU seconds (user + system) the workers have used, with their decoding children's (app/isolated.py):
    less bent by other load on the machine than throughput."""
    return sum(sum(child.cpu_times()[:4]) for child in master.children())


def settled(master: psutil.Process, workers: int) -> dict[int, float]:
    """Each worker's RSS once all have booted: their memory has not moved for a second."""
    last, still, deadline = {}, 0, time.perf_counter() + 60
    while still < 4 and time.perf_counter() < deadline:
        time.sleep(0.25)
        rss = workers_rss(master)
        same = rss.keys() == last.keys() and all(abs(rss[pid] - last[pid]) < 0.5 for pid in rss)
        still = still + 1 if len(rss) >= workers and same else 0
        last = rss
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load at most (default 60)")
    parser.add_argument("--requests", type=int, default=10**9, help="stop after this many requests")
    parser.add_argument("--workers", help="WEB_CONCURRENCY for gunicorn (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", help="GUNICORN_THREADS (default: gunicorn.conf.py's)")
    parser.add_argument("--max-requests", help="gunicorn --max-requests (0: never recycle workers)")
    parser.add_argument("--images", default=str(ROOT / "tests" / "fixtures" / "svhn_test"))
    args = parser.parse_args()

    images = [p.read_bytes() for p in sorted(Path(args.images).glob("*.png"))]
    port = free_port()
    env = dict(os.environ, PORT=str(port), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.update({k: v for k, v in (("WEB_CONCURRENCY", args.workers), ("GUNICORN_THREADS", args.threads)) if v})
    options = ["--bind", f"127.0.0.1:{port}"]  # loopback only, whatever the config binds
    options += ["--max-requests", args.max_requests] if args.max_requests else []
    command = procfile_command()
    command[-1:-1] = options  # before the application, which the Procfile puts last
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first_health = wait_for(port, started, process)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        first_ok = post(connection, images[0])
        first_predict = time.perf_counter() - started
        connection.close()
        master = psutil.Process(process.pid)
        booted = settled(master, int(env.get("WEB_CONCURRENCY", "2")))

        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        stop = threading.Event()
        deadline = time.perf_counter() + args.duration

        def client(offset: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            i = offset
            while not stop.is_set():
                data = images[i % len(images)]
                i += 1
                began = time.perf_counter()
                try:
                    ok = post(connection, data)
                except (OSError, http.client.HTTPException, ValueError):
                    ok = False
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors[0] += not ok
                    if len(latencies) >= args.requests or time.perf_counter() > deadline:
                        stop.set()
            connection.close()

        def monitor() -> None:  # each worker's RSS about every second, with the requests answered so far
            while not stop.wait(1.0):
                samples.append((len(latencies), workers_rss(master)))

        samples: list[tuple[int, dict[int, float]]] = []
        cpu_started = workers_cpu(master)
        load_started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k * 7,)) for k in range(args.clients)]
        threads.append(threading.Thread(target=monitor))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - load_started
        cpu = workers_cpu(master) - cpu_started  # recycled workers take their counts with them: use --max-requests 0
        end = workers_rss(master)
        master_rss = master.memory_info().rss / 2**20
        # "warm": the first sample after 1,000 requests (or a tenth of a shorter run): buffers allocated by the
        # first reads are not growth.
        warm_at = min(1000, len(latencies) // 10)
        warm = next((rss for count, rss in samples if count >= warm_at), end)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)

    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average before stopping {load[0]:.2f}")
    print(f"gunicorn: {' '.join(command[1:])}  WEB_CONCURRENCY={env.get('WEB_CONCURRENCY', '(config)')} "
          f"GUNICORN_THREADS={env.get('GUNICORN_THREADS', '(config)')}")
    print(f"first answer: /healthz {first_health:.2f} s, /predict {first_predict:.2f} s after starting gunicorn"
          f"{'' if first_ok else ' (NOT a 200)'}")
    print(f"load: {args.clients} clients, {len(latencies)} requests in {wall:.1f} s = {len(latencies) / wall:.0f} requests/s")
    print(f"latency: p50 {percentile(latencies, 50):.1f} ms  p95 {percentile(latencies, 95):.1f} ms  "
          f"p99 {percentile(latencies, 99):.1f} ms  max {max(latencies):.1f} ms")
    print(f"errors: {errors[0]}")
    if set(booted) == set(end):
        print(f"server CPU: {cpu * 1000 / len(latencies):.2f} ms per request (all workers, user + system)")
    else:
        print("server CPU: not measured (workers were recycled; --max-requests 0 to measure)")
    print(f"master: RSS {master_rss:.1f} MB")
    for pid in sorted(set(booted) | set(end)):
        boot, before, after = booted.get(pid), warm.get(pid), end.get(pid)
        if boot and before and after:
            print(f"worker {pid}: RSS {boot:.1f} MB booted, {before:.1f} MB warm (after {warm_at} requests), "
                  f"{after:.1f} MB at the end ({(after - before) / before:+.1%} from warm)")
        else:
            print(f"worker {pid}: {'recycled during the run' if boot else 'started during the run'}"
                  f" ({(boot or after):.1f} MB)")


if __name__ == "__main__":
    main()
