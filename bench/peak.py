"""Worst-case memory: what reading the largest picture of each kind the limits let in takes, at its peak.

    .venv/bin/python -m bench.peak [--pixels 25000000]

Starts gunicorn as the Procfile does, with one worker, afresh for each picture, and posts one
picture of each kind at the pixel limit (small files: flat colour with a dark block, as an attacker would send to make the
server do the most work for the fewest bytes). Each picture is decoded in a child process of the worker
(app/isolated.py), so the figure is the sum of two true high-water marks, not samples: the worker's
peak RSS (VmHWM in /proc, reset just before the request) and what its child took beyond the worker's
own pages (its VmHWM less its RSS as it began, which the child logs at LOG_LEVEL=debug). Then, on
another fresh worker, the same picture twice at once (one for each of the worker's threads), counted
as the worker's peak and the larger child's where the children took turns (a worker's children decode
large pictures one at a time, the other waiting with nothing decoded, and say so in their log line),
else both children's; and what
the worker still holds a second after.
Last, the dyno's worst case: the two costliest pictures (HEIC) posted four times at once to a server of
two workers with two threads each (a 512 MB Heroku dyno's defaults), counted as the master's RSS, each
worker's peak and the largest child's where all the children took turns (the server decodes one large
picture at a time, whatever the worker: app/turn.py), else all the children's: an upper bound, since the
peaks need not fall together; and the largest sum of the server's processes' PSS sampled while they read
(a floor).
Linux only.
"""
from __future__ import annotations

import argparse
import http.client
import io
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
import psutil
from PIL import Image

from app.images import HEIF_BYTES_PER_PIXEL, MAX_COEFFICIENT_BYTES, MAX_HEIF_BYTES, MAX_WEBP_PIXELS
from bench.load import ROOT, free_port, procfile_command, settled, wait_for


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def deep_heic(size: tuple[int, int]) -> bytes:
    """10 bits, colour at full resolution and transparency: HEIC's costliest kind (app/images.py)."""
    pixels = np.zeros((size[1], size[0], 4), np.uint16)
    pixels[size[1] // 3:size[1] // 2, size[0] // 3:size[0] // 2] = (0, 0, 0, 65535)
    buffer = io.BytesIO()
    pillow_heif.from_bytes("RGBA;16", size, pixels.tobytes()).save(buffer, quality=10, chroma=444)
    return buffer.getvalue()


def pictures(pixels: int) -> dict[str, tuple[bytes, str]]:
    side = int(math.sqrt(pixels))
    wide = (side * 4 // 3, side * 3 // 4)  # a phone photo's 4:3

    def encode(image: Image.Image, fmt: str, **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        return buffer.getvalue()

    def block(mode: str, size: tuple[int, int], background, ink) -> Image.Image:
        image = Image.new(mode, size, background)
        image.paste(ink, (size[0] // 3, size[1] // 3, size[0] // 2, size[1] // 2))
        return image

    def four_by_three(pixels: int) -> tuple[int, int]:
        return int(math.sqrt(pixels * 4 / 3)), int(math.sqrt(pixels * 3 / 4))

    pillow_heif.register_heif_opener()
    grey16 = Image.fromarray(np.full((side, side), 50000, np.uint16))
    webp = four_by_three(min(pixels, MAX_WEBP_PIXELS))  # the formats with a ceiling of their own, at it
    cmyk = four_by_three(min(pixels, MAX_COEFFICIENT_BYTES // 8))  # 4 channels x 2 bytes a pixel
    strip = (65_500, pixels // 65_500)  # JPEG's widest
    # 1% under its ceiling: the encoder pads a side to an even number, and the padded size is what is judged.
    deep = four_by_three(min(pixels, int(0.99 * MAX_HEIF_BYTES / HEIF_BYTES_PER_PIXEL[True, True, True])))
    turned = Image.Exif()
    turned[0x0112] = 6  # a phone held upright: the picture is turned after it is shrunk
    return {
        f"PNG RGBA {side}x{side}": (encode(block("RGBA", (side, side), (0, 0, 0, 0), (0, 0, 0, 255)), "PNG"), "image/png"),
        f"PNG RGB {side}x{side}": (encode(block("RGB", (side, side), "white", (0, 0, 0)), "PNG"), "image/png"),
        f"PNG 16-bit grey {side}x{side}": (encode(grey16, "PNG"), "image/png"),
        f"GIF {side}x{side}": (encode(block("P", (side, side), 1, 0), "GIF"), "image/gif"),
        f"JPEG {wide[0]}x{wide[1]}": (encode(block("RGB", wide, "white", (0, 0, 0)), "JPEG"), "image/jpeg"),
        f"HEIC {wide[0]}x{wide[1]}": (encode(block("RGB", wide, "white", (0, 0, 0)), "HEIF"), "image/heic"),
        f"JPEG strip {strip[0]}x{strip[1]}": (encode(block("RGB", strip, "white", (0, 0, 0)), "JPEG"), "image/jpeg"),
        f"JPEG progressive 4:4:4 {wide[0]}x{wide[1]}": (encode(block("RGB", wide, "white", (0, 0, 0)), "JPEG",
                                                               progressive=True, subsampling=0), "image/jpeg"),
        f"JPEG progressive CMYK {cmyk[0]}x{cmyk[1]}": (encode(block("CMYK", cmyk, (0, 0, 0, 0), (0, 0, 0, 255)), "JPEG",
                                                              progressive=True, subsampling=0), "image/jpeg"),
        f"PNG RGBA {side}x{side}, EXIF orientation 6": (encode(block("RGBA", (side, side), (0, 0, 0, 0), (0, 0, 0, 255)),
                                                               "PNG", exif=turned), "image/png"),
        f"HEIC 10-bit 4:4:4 RGBA {deep[0]}x{deep[1]}": (deep_heic(deep), "image/heic"),
        # Lossy: a lossless one this size is refused (app/images.py); libwebp decodes either into its RGBA canvases.
        f"WebP lossy {webp[0]}x{webp[1]}": (encode(block("RGB", webp, "white", (0, 0, 0)), "WEBP", quality=80), "image/webp"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pixels", type=int, default=25_000_000, help="MAX_IMAGE_PIXELS to test at (default 25,000,000)")
    args = parser.parse_args()
    cases = pictures(args.pixels)
    print(f"MAX_IMAGE_PIXELS={args.pixels:,}; a fresh gunicorn with one worker for each picture")
    print("| picture | file | status | time | worker's RSS idle | worker's peak RSS | decoding child, beyond the worker's "
          "| in all | two at once: in all | two at once: worker's RSS a second after | children's peaks, two at once |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (data, content_type) in cases.items():
        one = serve(data, content_type, args.pixels, 1)
        two = serve(data, content_type, args.pixels, 2)
        size = f"{len(data) / 1e3:.0f} kB" if len(data) >= 1000 else f"{len(data)} bytes"
        print(f"| {name} | {size} | {one.status} | {one.seconds * 1000:.0f} ms | {one.idle:.0f} MB | {one.peak:.0f} MB "
              f"| {sum(one.children):.0f} MB | {one.peak + sum(one.children):.0f} MB "
              f"| {two.peak + (max(two.children, default=0) if one.took_turns else sum(two.children)):.0f} MB | {two.after:.0f} MB "
              f"| {', '.join(f'{mb:.0f}' for mb in two.children)} MB |")
    print()
    print("A dyno: 2 workers x 2 threads, the picture posted 4 times at once")
    print("| picture | statuses | time | master's RSS | workers' peak RSS | children, beyond their workers' "
          "| took turns | in all: upper bound | in all: sampled PSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (data, content_type) in cases.items():
        if not name.startswith("HEIC"):
            continue
        dyno = serve(data, content_type, args.pixels, 4, workers=2)
        children = max(dyno.children, default=0) if dyno.took_turns else sum(dyno.children)
        print(f"| {name} | {', '.join(map(str, dyno.statuses))} | {dyno.seconds * 1000:.0f} ms | {dyno.master:.0f} MB "
              f"| {' + '.join(f'{mb:.0f}' for mb in dyno.peaks)} MB | {', '.join(f'{mb:.0f}' for mb in dyno.children)} MB "
              f"| {'yes' if dyno.took_turns else 'no'} | {dyno.master + sum(dyno.peaks) + children:.0f} MB "
              f"| {dyno.sampled:.0f} MB |")


def post(port: int, data: bytes, content_type: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/predict", body=data, headers={"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@dataclass
class Served:
    statuses: list[int]
    seconds: float
    idle: float  # the workers' RSS before, MB
    peaks: list[float]  # each worker's peak RSS, MB
    after: float  # the workers' RSS a second after, MB
    children: list[float]  # what each decoding child took beyond its worker's pages, MB
    took_turns: bool  # the children decoded one at a time (a large picture: app/turn.py)
    master: float  # the master's RSS, MB
    sampled: float  # the largest sum of all the server's processes' PSS seen while they read, MB

    @property
    def status(self) -> int:  # the last request's
        return self.statuses[-1]

    @property
    def peak(self) -> float:
        return sum(self.peaks)


CHILD_LINE = re.compile(r"decoded \d+x\d+ in a child process in \d+ ms, taking (\d+) MB beyond the worker's(, after its turn)?")


def serve(data: bytes, content_type: str, pixels: int, copies: int, workers: int = 1) -> Served:
    """`copies` posts of the picture at once to a fresh server of `workers`, and what they took."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY=str(workers), GUNICORN_THREADS="2",
               MAX_IMAGE_PIXELS=str(pixels), LOG_LEVEL="debug",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = procfile_command()
    command[-1:-1] = ["--bind", f"127.0.0.1:{port}"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(port, started, process)
        idle = settled(psutil.Process(process.pid), workers)
        for worker in idle:
            Path(f"/proc/{worker}/clear_refs").write_text("5")  # VmHWM from here: this picture's peak alone
        began = time.perf_counter()
        with ThreadPoolExecutor(copies) as pool, Sampler(psutil.Process(process.pid)) as sampled:
            statuses = list(pool.map(lambda _: post(port, data, content_type), range(copies)))
        elapsed = time.perf_counter() - began
        peaks = [peak_mb(worker) for worker in idle]
        master = psutil.Process(process.pid).memory_info().rss / 2**20
        time.sleep(1)
        after = sum(psutil.Process(worker).memory_info().rss for worker in idle) / 2**20
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        log = process.communicate(timeout=30)[1].decode(errors="replace")
    children = CHILD_LINE.findall(log)
    return Served(statuses, elapsed, sum(idle.values()), peaks, after, [float(mb) for mb, _ in children],
                  bool(children) and all(turn for _, turn in children), master, sampled.peak)


class Sampler:
    """The largest sum of PSS (each shared page split among its sharers, so counted once in all, as the
    dyno's memory counts it) over the master, its workers and their children, sampled as fast as it
    goes while the block runs: a floor of the true peak."""

    def __init__(self, master: psutil.Process):
        self.master, self.peak, self.running = master, 0.0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        while self.running:
            total = 0
            for process in [self.master, *self.master.children(recursive=True)]:
                try:
                    total += process.memory_full_info().pss
                except psutil.Error:  # a child that has just exited
                    pass
            self.peak = max(self.peak, total / 2**20)
            time.sleep(0.002)  # a decoding lasts hundreds of ms; the samples must not take a core from it

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()


if __name__ == "__main__":
    main()
