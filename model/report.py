"""Turn an evaluation report (model.evaluate --report) into the model's markdown report with plots.

    python -m model.report --eval model/report/test.json --out model/report

Writes coverage.png (accuracy against the share of images answered when the model may abstain
below a confidence), confusion.png (digit confusions where the length was read right),
failures.png (the most confident wrong readings) and the figures in README.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from model.data import load_samples
from model.preprocess import protocol_crop


def coverage_curve(readings: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Answer only the k most confident images: (coverage, accuracy, confidence threshold) for each k."""
    ordered = sorted(readings, key=lambda r: -r["confidence"])
    right = np.cumsum([r["read"] == r["truth"] for r in ordered])
    k = np.arange(1, len(ordered) + 1)
    return k / len(ordered), right / k, np.array([r["confidence"] for r in ordered])


def coverage_at(readings: list[dict], threshold: float) -> tuple[float, float]:
    """Share of images answered at confidence >= threshold, and the accuracy on those."""
    answered = [r for r in readings if r["confidence"] >= threshold]
    right = sum(r["read"] == r["truth"] for r in answered)
    return len(answered) / len(readings), right / max(len(answered), 1)


def confusion(readings: list[dict]) -> np.ndarray:
    matrix = np.zeros((10, 10), int)
    for r in readings:
        if len(r["read"]) == len(r["truth"]):
            for t, p in zip(r["truth"], r["read"]):
                matrix[int(t), int(p)] += 1
    return matrix


def plot_coverage(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
    for protocol, result in results.items():
        coverage, acc, _ = coverage_curve(result["readings"])
        ax.plot(coverage * 100, acc * 100, label=protocol)
    ax.axhline(98, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="images answered (%)", ylabel="exact-number accuracy (%)", ylim=(50, 100.5),
           title="Accuracy against coverage")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.4, 4), dpi=110)
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for t in range(10):
        for p in range(10):
            if matrix[t, p]:
                ax.text(p, t, matrix[t, p], ha="center", va="center", fontsize=7,
                        color="white" if t == p else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="read", ylabel="true", title="Digit confusions")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def failure_montage(readings: list[dict], data: Path, path: Path, count: int = 24) -> None:
    samples = {s.path.name: s for s in load_samples(data)}
    wrong = sorted((r for r in readings if r["read"] != r["truth"]), key=lambda r: -r["confidence"])[:count]
    tile_w, tile_h, cols = 128, 84, 6
    sheet = Image.new("RGB", (cols * tile_w, max(1, -(-len(wrong) // cols)) * tile_h), "white")
    draw = ImageDraw.Draw(sheet)
    for i, r in enumerate(wrong):
        sample = samples[r["image"]]
        with Image.open(sample.path) as image:
            crop = protocol_crop(image.convert("RGB"), list(sample.boxes))
        crop.thumbnail((tile_w - 4, tile_h - 18))
        x, y = (i % cols) * tile_w, (i // cols) * tile_h
        sheet.paste(crop, (x + 2, y + 2))
        draw.text((x + 2, y + tile_h - 15), f"{r['truth']} read {r['read'] or '-'} {r['confidence']:.2f}", fill="black")
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", required=True, help="JSON written by model.evaluate --report")
    parser.add_argument("--out", default="model/report")
    args = parser.parse_args()
    report = json.loads(Path(args.eval).read_text())
    results = {p: report[p] for p in ("crop", "whole") if p in report}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_coverage(results, out / "coverage.png")
    plot_confusion(confusion(results["crop"]["readings"]), out / "confusion.png")
    failure_montage(results["crop"]["readings"], Path(report["data"]), out / "failures.png")
    threshold = report.get("confidence_threshold")
    for protocol, result in results.items():
        line = f"{protocol}: {result['number_accuracy']:.2%} exact"
        if threshold is not None:
            cov, acc = coverage_at(result["readings"], threshold)
            line += f"; confident (>= {threshold:.3f}, chosen on validation) on {cov:.1%} of images, {acc:.2%} of those right"
        print(line)


if __name__ == "__main__":
    main()
