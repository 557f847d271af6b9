"""Speed and memory of the serving path, printed as figures (not asserted by tests).

    .venv/bin/python -m bench.speed [--images tests/fixtures/svhn_test] [--repeat 5]

Measures, in one fresh process: resident memory after importing the app and loading the model,
one invoke of each network alone (median of 300), the model time per image (LiteRT invokes of
the localiser and of the reader on each candidate), and the end-to-end /predict time through Flask's
test client (decode in a child process + preprocess + model + JSON), as p50/p95 over every image x
repeat, and its CPU time (this process's and its decoding children's); the
same for pen drawings sent as the page's pad sends them (?kind=drawing), and for a
12-megapixel phone JPEG with a number and one of a bare wall (where the localiser, finding nothing
at first sight, searches the picture again in windows).
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

DRAWN = ("7", "38", "210", "2048", "4096", "96")  # drawn along the Hershey strokes, as on the pad

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its reaped children (app/isolated.py's)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def cpu() -> str:
    """The processor and the instructions LiteRT's int8 kernels gain most from: the same models run
    several times faster where the CPU has int8 dot products (AVX-512 VNNI or AVX-VNNI)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    has = [flag for flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if flag in flags]
    return f"{name}, {os.cpu_count()} cores ({', '.join(has) or 'no AVX2'})"


def invoke_ms(model, runs: int = 300) -> float:
    """Median time of one call of a loaded network on a blank input: what one look or one reading costs."""
    import numpy as np  # here, not at the top: the interpreter's own memory is measured before the app's imports

    blank = np.zeros((1, *model.input_shape), np.float32)
    return float(np.median([model.run(blank)[1] for _ in range(runs)]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def phone_photo(svhn_photo: Path | None) -> bytes:
    """A 12-megapixel phone photo: a house front with an SVHN test photo on it (or a bare one), as a camera JPEG.

    Made in a child process, so that its 36 MB canvas does not count in this process's memory.
    """
    lines = ["import io, sys; from PIL import Image", "scene = Image.new('RGB', (4000, 3000), (128, 120, 110))"]
    if svhn_photo:
        lines += [f"photo = Image.open({str(svhn_photo)!r}).convert('RGB')",
                  "scene.paste(photo.resize((photo.width * 4, photo.height * 4)), (2300, 1400))"]
    else:  # a camera's grain on the bare wall, so that it is not one flat colour
        lines += ["import numpy as np; grain = np.random.default_rng(0).normal(0, 6, (3000, 4000, 3))",
                  "scene = Image.fromarray((np.asarray(scene, np.float32) + grain).clip(0, 255).astype('uint8'))"]
    lines.append("out = io.BytesIO(); scene.save(out, 'JPEG', quality=92); sys.stdout.buffer.write(out.getvalue())")
    script = "\n".join(lines)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, check=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="tests/fixtures/svhn_test")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    base = rss_mb()
    from app import create_app  # noqa: E402  (imported here so its memory is measured)

    app = create_app()
    loaded = rss_mb()
    pipeline = app.extensions["pipeline"]
    invokes = {name: invoke_ms(model) for name, model in
               (("localiser", pipeline.locator), ("reader", pipeline.reader), ("drawing reader", pipeline.drawing_reader))}
    client = app.test_client()
    files = sorted(Path(args.images).glob("*.png"))
    model_ms, total_ms = [], []
    cpu_before = cpu_seconds()
    for data in [f.read_bytes() for f in files] * args.repeat:
        started = time.perf_counter()
        body = client.post("/predict", data=data, content_type="image/png").get_json()
        total_ms.append((time.perf_counter() - started) * 1000)
        model_ms.append(body["model_ms"])
    cpu_ms = [(after - before) * 1000 / len(total_ms) for after, before in zip(cpu_seconds(), cpu_before)]

    after_pngs = rss_mb()
    from scripts.pen import pen_drawing

    drawings = []
    for number in DRAWN:  # the pad's size: 480x240 with a 16-pixel pen
        buffer = io.BytesIO()
        pen_drawing(number, height=160, pen=16).save(buffer, "PNG")
        drawings.append(buffer.getvalue())
    drawing_model_ms, drawing_ms, drawn_right = [], [], 0
    for number, data in list(zip(DRAWN, drawings)) * args.repeat:
        started = time.perf_counter()
        body = client.post("/predict?kind=drawing", data=data, content_type="image/png").get_json()
        drawing_ms.append((time.perf_counter() - started) * 1000)
        drawing_model_ms.append(body["model_ms"])
        drawn_right += body["number"] == number

    photo = phone_photo(Path(args.images) / "2.png")  # SVHN test photo 2: "210"
    phone_ms = []
    for _ in range(args.repeat * 4):
        started = time.perf_counter()
        body = client.post("/predict", data=photo, content_type="image/jpeg").get_json()
        phone_ms.append((time.perf_counter() - started) * 1000)
    bare = phone_photo(None)
    bare_ms, bare_model_ms = [], []
    for _ in range(args.repeat * 4):
        started = time.perf_counter()
        bare_body = client.post("/predict", data=bare, content_type="image/jpeg").get_json()
        bare_ms.append((time.perf_counter() - started) * 1000)
        bare_model_ms.append(bare_body["model_ms"])

    print(f"machine: {cpu()}, Python {platform.python_version()}")
    sizes = " + ".join(f"{Path(app.config[key]).stat().st_size / 1e6:.1f} MB"
                       for key in ("LOCATOR_PATH", "MODEL_PATH", "DRAWING_MODEL_PATH"))
    print(f"models: {pipeline.name} and {pipeline.drawing_reader.name} ({sizes})")
    print(f"tensorflow imported: {'tensorflow' in sys.modules}")
    print(f"memory: {base:.0f} MB interpreter, {loaded:.0f} MB with app and model, {after_pngs:.0f} MB after {len(total_ms)} "
          f"photos, {rss_mb():.0f} MB after {len(drawing_ms)} drawings and {len(phone_ms) + len(bare_ms)} 12-megapixel JPEGs more")
    threads = app.config["MODEL_THREADS"]
    print(f"one invoke (LiteRT, {threads} thread{'s' * (threads > 1)} a network: MODEL_THREADS; median of 300): " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in invokes.items()))
    print(f"model time:      p50 {percentile(model_ms, 50):.2f} ms  p95 {percentile(model_ms, 95):.2f} ms")
    print(f"/predict (in-process, PNG of {len(files)} SVHN test photos x {args.repeat}): "
          f"p50 {percentile(total_ms, 50):.2f} ms  p95 {percentile(total_ms, 95):.2f} ms; CPU {sum(cpu_ms):.2f} ms a request "
          f"(user + system), {cpu_ms[1]:.2f} ms of it in the decoding children")
    print(f"drawings ({len(DRAWN)} numbers drawn with a pen x {args.repeat}, {drawn_right} read right): model time "
          f"p50 {percentile(drawing_model_ms, 50):.2f} ms  p95 {percentile(drawing_model_ms, 95):.2f} ms; /predict?kind=drawing "
          f"p50 {percentile(drawing_ms, 50):.2f} ms  p95 {percentile(drawing_ms, 95):.2f} ms")
    print(f"/predict (in-process, 12-megapixel JPEG of {len(photo) / 1e6:.1f} MB, read \"{body['number']}\" x {len(phone_ms)}): "
          f"p50 {percentile(phone_ms, 50):.1f} ms  p95 {percentile(phone_ms, 95):.1f} ms")
    print(f"/predict (in-process, 12-megapixel JPEG of a bare wall, {len(bare) / 1e6:.1f} MB, "
          f"found {bare_body['found']} x {len(bare_ms)}): p50 {percentile(bare_ms, 50):.1f} ms  p95 {percentile(bare_ms, 95):.1f} ms, "
          f"model time p50 {percentile(bare_model_ms, 50):.2f} ms")


if __name__ == "__main__":
    main()
