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

from model.cli import said_plainly
from model.data import load_samples
from model.preprocess import protocol_crop, union_box

# Runs trained before model.train recorded these settings used the values it then fixed.
UNRECORDED = {"weight_decay": 1e-4, "dropout": 0.3}


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


def coverage_at_accuracy(readings: list[dict], accuracy: float = 0.98) -> float:
    """The largest share of images that can be answered, most confident first, at `accuracy` or better."""
    coverage, acc, _ = coverage_curve(readings)
    ok = coverage[acc >= accuracy]
    return float(ok.max()) if len(ok) else 0.0


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


def boxes_montage(readings: list[dict], data: Path, path: Path, count: int = 12) -> None:
    """The first `count` whole test photos with the answer's box and the true union box drawn on them."""
    samples = {s.path.name: s for s in load_samples(data)}
    tile, tile_h, cols = 192, 120, 4
    sheet = Image.new("RGB", (cols * tile, -(-count // cols) * (tile_h + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, r in enumerate(readings[:count]):
        sample = samples[r["image"]]
        with Image.open(sample.path) as image:
            photo = image.convert("RGB")
        scale = min((tile - 4) / photo.width, tile_h / photo.height)
        photo = photo.resize((max(1, int(photo.width * scale)), max(1, int(photo.height * scale))))
        marks = ImageDraw.Draw(photo)
        left, top, width, height = union_box(list(sample.boxes))
        marks.rectangle([left * scale, top * scale, (left + width) * scale, (top + height) * scale], outline=(150, 150, 150), width=2)
        if r["box"]:
            left, top, width, height = r["box"]
            marks.rectangle([left * scale, top * scale, (left + width) * scale, (top + height) * scale], outline=(0, 200, 0), width=2)
        x, y = (i % cols) * tile, (i // cols) * (tile_h + 16)
        sheet.paste(photo, (x, y))
        draw.text((x + 2, y + tile_h + 2), f"{r['truth']} read {r['read'] or '(none)'}", fill="black")
    sheet.save(path)


def started_from(run: dict) -> str:
    """"scratch", an earlier run's name (its best epoch), or the run and checkpoint ("stage3, last")."""
    if not run.get("init"):
        return "scratch"
    init = Path(run["init"])
    return init.parent.name if init.name == "best.keras" else f"{init.parent.name}, {init.stem}"



def training_lines(t: dict) -> list[str]:
    """One model.train run's record -> how it was trained and what its batches were made of."""
    averaged = t.get("averaged_epochs")
    rate = f"a learning rate held at {t['lr']} after a warm-up epoch" if averaged else f"a cosine learning rate from {t['lr']}"
    if averaged:
        kept = f"; the mean of the weights of epochs {averaged[0]} to {averaged[1]} (batch-norm statistics recomputed), "
    else:
        kept = f"; best epoch {t.get('best_epoch')}, "
    lines = [f"`python -m model.train` on `{t['data']}`: {t['train_images']} photos for training, {t['val_images']} held "
             f"out for validation (seed {t.get('val_seed', t['seed'])}); {t['epochs']} epochs x {t['steps']} batches of {t['batch']} "
             f"({t['samples_seen']:,} augmented examples), AdamW with {rate} and weight "
             f"decay {t.get('weight_decay', UNRECORDED['weight_decay']):g}, dropout {t.get('dropout', UNRECORDED['dropout']):g}, "
             f"{t['train_seconds'] / 60:.0f} minutes on the CPU"
             + (f", starting from the weights of `{t['init']}`" if t.get("init") else "")
             + (f"{kept}{t['best_val_number_acc']:.1%} of the validation photos exact"
                if "best_epoch" in t else "")  # a member's record keeps them; a card has them under "validation"
             + ". Mix of each batch:", ""]
    shares = {"recombined numbers from real digit crops": t.get("synth_fraction", 0),
              f"numbers rendered from {t.get('usable_fonts', 0)} fonts (model/render.py)": t.get("font_fraction", 0),
              "handwritten numbers from MNIST train": t.get("handwriting_fraction", 0) if t.get("mnist") else 0,
              "pseudo-labelled unlabelled photos": t.get("pseudo_fraction", 0) if t.get("pseudo") else 0,
              "regions without digits, read as no number": t.get("blank_fraction", 0)}
    shares = {"augmented real photos": 1 - sum(shares.values()), **shares}
    lines += [f"* {share:.0%} {name}" for name, share in shares.items() if share]
    if t.get("pseudo"):
        lines += ["", f"The pseudo-labels ({t['pseudo']}): {t['pseudo_labelled_photos']:,} unlabelled photos that an "
                  "earlier model read with at least its validation confidence threshold."]
    return lines


def markdown(report: dict, card: dict, runs: list[dict], quantized: list[tuple[str, float]], locator: dict | None,
             drawing: dict | None = None) -> str:
    """The report beside the model: recipe, validation comparisons, test figures and plots."""
    t = card["training"]
    lines = [f"# Model report: {card['name']}", "",
             f"`{card['file']}`: {card['bytes'] / 1e6:.1f} MB, quantization `{card['quantization']}`, input "
             f"{card['input']['shape']}, exported {card['date']}. Every experiment tried beside this recipe, kept "
             "or dropped, with its validation figures: [experiments.md](experiments.md).", "",
             "## Training recipe", "",
             "`python -m model.train --recipe model/recipe.json` runs every stage of the table below that starts "
             "from scratch or from an earlier stage (not the ablate- runs), and exports the stage its `export` "
             "names as the bundled reader:", "",
             ]
    if "members" in t:  # an ensemble (model/ensemble.py): each member's recipe, then their average
        lines += [f"The bundled reader averages the probabilities of {len(t['members'])} readers, head by head "
                  f"(`python -m model.ensemble`, {t['params']:,} parameters in all); together they read "
                  f"{card['validation']['number_accuracy']:.1%} of the validation photos exactly.", ""]
        for member in t["members"]:
            lines += [f"### {Path(member['out']).name}", "", *training_lines(member), ""]
    else:
        lines += training_lines(t)
    lines += ["", "## What each means added (validation, crop protocol)", "",
              f"Each run is scored on the same {t['val_images']} held-out photos, so one photo is "
              f"{1 / t['val_images']:.1%}; rows that change several means at once measure them together. "
              "Handwriting: 500 numbers of MNIST val digits (the last 10,000 of MNIST train), read by the reader "
              "alone in their digits' box grown by 30%; runs trained before that split existed show none, and "
              "base and stage2 learned from those digits too, so the figures of runs that start from stage2 "
              "flatter them. The ablate- runs each continue stage2 for 8 epochs with stage2's mix, changing one "
              "thing (`make ablation`); ablate-longer changes nothing, so it is what more training alone is worth; "
              "ablate-noaugment feeds every example (photos, recombined numbers, handwriting) as the crop protocol's "
              "plain cut; ablate-norecombined gives the recombined numbers' share to the real photos.", "",
              "| run | starts from | epochs | weight decay, dropout | augmented | recombined | fonts | handwriting "
              "| pseudo-labelled photos | no-number regions | validation exact | handwriting |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    sizes = [run for run in runs if Path(run["out"]).name.startswith("size-")]
    for run in (run for run in runs if run not in sizes):
        pseudo = f"{run.get('pseudo_fraction', 0):.0%} of {run['pseudo_labelled_photos']:,}" if run.get("pseudo") else "0%"
        lines.append(f"| {Path(run['out']).name} | {started_from(run)} | {run['epochs']} | "
                     f"{run.get('weight_decay', UNRECORDED['weight_decay']):g}, {run.get('dropout', UNRECORDED['dropout']):g} | "
                     f"{'no' if run.get('augment') is False else 'yes'} | "
                     f"{run.get('synth_fraction', 0):.0%} | {run.get('font_fraction', 0):.0%} | "
                     f"{run.get('handwriting_fraction', 0) if run.get('mnist') else 0:.0%} | {pseudo} | "
                     f"{run.get('blank_fraction', 0):.0%} | {run['best_val_number_acc']:.1%} | "
                     f"{format(run['best_val_handwriting_acc'], '.1%') if 'best_val_handwriting_acc' in run else '-'} |")
    if sizes:
        lines += ["", "## The network's size (validation, crop protocol)", "",
                  f"Trained from scratch with the base run's mix, each for the same {sizes[0]['epochs']} epochs "
                  "(`make sizing`): a fixed budget, shorter than the bundled stages, so it compares the sizes at "
                  "equal training rather than each at its best.", "",
                  "| run | conv channels | parameters | minutes on the CPU | validation exact |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {Path(run['out']).name} | {'-'.join(map(str, run['widths']))} | {run.get('params', 0):,} | "
                  f"{run['train_seconds'] / 60:.0f} | {run['best_val_number_acc']:.1%} |" for run in sizes]
    if quantized:
        lines += ["", "## float32 against int8 (validation, crop protocol)", "", "| export | validation exact |", "| --- | --- |"]
        lines += [f"| {name} | {acc:.1%} |" for name, acc in quantized]
    if locator:
        lt = locator["training"]
        lines += ["", "## The localiser", "",
                  f"`{locator['file']}` ({locator['bytes'] / 1e6:.1f} MB, {lt['params']:,} parameters): `python -m model.train_locator` "
                  f"on the same {lt['train_images']} training photos (the same {lt['val_images']} held out), "
                  f"{lt['epochs']} epochs x {lt['steps']} batches of {lt['batch']} ({lt['samples_seen']:,} pictures: real photos "
                  "cropped anywhere from tight to whole, recombined numbers, MNIST train drawings, scenes with the number "
                  "pasted among digit-free patches, and pictures without digits), "
                  f"{lt['train_seconds'] / 60:.0f} minutes on the CPU. On validation ({locator['validation']['pictures']}) "
                  f"its best epoch finds {locator['validation']['found']:.1%} of the numbers (top box overlapping the true box by "
                  "half or more, at the score that 97.5% of the validation pictures without digits stay under). The "
                  f"serving threshold, {locator['found_threshold']:.3f}, is that score again, taken through the whole "
                  "pipeline with the bundled reader on pictures without digits made from the held-out photos: every "
                  "stretch of wall beside their numbers once, and as many textures (`model.calibrate`)."]
    if drawing:
        dt = drawing["training"]
        lines += ["", "## The drawing reader", "",
                  f"`{drawing['file']}` ({drawing['bytes'] / 1e6:.1f} MB, the reader's network) reads what the page's pad "
                  "sends (`POST /predict?kind=drawing`). A drawing needs no localiser: its number is the ink on the "
                  "plain sheet, and digits drawn apart are read one by one as well as whole (model/drawing.py, "
                  "model/pipeline.py). It goes on from stage4, one of the photo readers, in the recipe's last stages: on MNIST train "
                  f"handwriting alone, then on {dt.get('handwriting_fraction', 0):.0%} handwriting (a "
                  f"{dt.get('font_digit_share', 0):.0%} share of its digits being font glyphs drawn like pen strokes"
                  + (f", {dt['flag_ones']:.0%} of its 1s given a flag and {dt.get('repeats', 0):.0%} of its numbers one "
                     "digit repeated" if dt.get("flag_ones") else "") + ") with "
                  f"{dt.get('font_fraction', 0):.0%} font-rendered and {dt.get('synth_fraction', 0):.0%} recombined numbers "
                  f"({dt['epochs']} epochs, {dt['train_seconds'] / 60:.0f} minutes on the CPU). The epoch kept is the "
                  f"best on {drawing['validation']['drawings']}: {drawing['validation']['number_accuracy']:.1%} exact."]
        if "handwriting" in report and "whole_ink_only" in report["handwriting"]:
            lines += ["", f"On the test drawings below, reading the whole ink alone gives "
                      f"{report['handwriting']['whole_ink_only']:.1%}; with the pieces' reading as well, "
                      f"{report['handwriting']['number_accuracy']:.1%}."]
    lines += ["", f"## SVHN test 1-500 ({report['data']}; never trained or tuned on)", "",
              "| protocol | images | exact number | per digit | by length |", "| --- | --- | --- | --- | --- |"]
    for protocol in ("crop", "whole", "scene", "reader", "handwriting"):
        if protocol in report:
            r = report[protocol]
            by = ", ".join(f"{k}: {v['number_accuracy']:.1%} of {v['images']}" for k, v in r["by_length"].items())
            lines.append(f"| {protocol} | {r['images']} | {r['number_accuracy']:.1%} | {r['digit_accuracy']:.1%} | {by} |")
    if "none" in report:
        lines += ["", f"Pictures without digits ({report['none']['images']}: half regions of the test photos away from "
                  "their digit boxes, each a different one, half plain textures): a number is reported for "
                  f"{report['none']['number_reported']:.1%} of them."]
    lines += ["", "crop: the digits' union box grown by 30% on every side (kept inside the photo), then the product "
              "pipeline (localiser, then reader); whole: the photo as it is; scene: the photo pasted at a random "
              "spot of a background three times its width and height (textures, or regions of other test photos "
              "away from their digits); reader: the crop read by the reader alone; handwriting: 1,000 numbers of "
              "1-4 MNIST *test* digits drawn dark on light, read "
              + ("as the pad's drawings are (the drawing reader)" if report.get("handwriting", {}).get("read_as") == "drawing"
                 else "as uploaded photos are (localiser, then reader)") + ".", "",
              "Boxes found on whole test photos (green: the answer's box; grey: the true digits' union box):", "",
              "![boxes found](boxes.png)"]
    threshold = report.get("confident_threshold")
    if threshold is not None:
        lines += ["", "## Confidence", "",
                  f"`confident` is `confidence >= {threshold:.3f}`, the threshold at which the pipeline's answers "
                  "on the validation photos (crop, whole and scene together) are 98% right (`model.calibrate`). "
                  "On test 1-500:", ""]
        for protocol in (p for p in ("crop", "whole", "scene") if p in report):
            cov, acc = coverage_at(report[protocol]["readings"], threshold)
            lines.append(f"* {protocol}: confident on {cov:.1%} of the images, {acc:.1%} of those right; "
                         f"the most confident {coverage_at_accuracy(report[protocol]['readings']):.1%} are 98% right")
    lines += ["", "![accuracy against coverage](coverage.png) ![digit confusions](confusion.png)", "",
              "Most confident failures (crop protocol; truth, reading, confidence):", "", "![failures](failures.png)", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", required=True, help="JSON written by model.evaluate --report")
    parser.add_argument("--out", default="model/report")
    parser.add_argument("--card", default="model/svhn.json")
    parser.add_argument("--locator-card", default="model/locator.json")
    parser.add_argument("--drawing-card", default="model/drawing.json")
    parser.add_argument("--runs", nargs="*", default=[], help="training runs to compare on validation (their train.json)")
    parser.add_argument("--quantized", nargs="*", default=[], metavar="NAME=ACC",
                        help="validation accuracy of float32 and int8 exports, e.g. float32=0.83 int8=0.83")
    args = parser.parse_args()
    report = json.loads(Path(args.eval).read_text())
    results = {p: report[p] for p in ("crop", "whole", "scene") if p in report}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_coverage(results, out / "coverage.png")
    plot_confusion(confusion(results["crop"]["readings"]), out / "confusion.png")
    failure_montage(results["crop"]["readings"], Path(report["data"]), out / "failures.png")
    if "whole" in report:
        boxes_montage(report["whole"]["readings"], Path(report["data"]), out / "boxes.png")
    runs = [dict(json.loads((Path(r) / "train.json").read_text()), out=r) for r in args.runs]
    quantized = [(item.split("=")[0], float(item.split("=")[1])) for item in args.quantized]
    card = json.loads(Path(args.card).read_text())
    locator = json.loads(Path(args.locator_card).read_text()) if Path(args.locator_card).exists() else None
    drawing = json.loads(Path(args.drawing_card).read_text()) if Path(args.drawing_card).exists() else None
    (out / "README.md").write_text(markdown(report, card, runs, quantized, locator, drawing))
    threshold = report.get("confident_threshold")
    for protocol, result in results.items():
        line = f"{protocol}: {result['number_accuracy']:.2%} exact"
        if threshold is not None:
            cov, acc = coverage_at(result["readings"], threshold)
            line += f"; confident (>= {threshold:.3f}, chosen on validation) on {cov:.1%} of images, {acc:.2%} of those right"
        print(line)


if __name__ == "__main__":
    with said_plainly():  # a wrong folder or file is one line, not a traceback
        main()
