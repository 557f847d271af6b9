"""The bundled reader from the data folders, in one command: every stage of model/recipe.json.

    python -m model.train --recipe model/recipe.json --data data/svhn --unlabelled data/svhn_unlabeled --mnist data/mnist

Each stage is one model.train run into RUNS/<run>. Before a stage with "pseudo_from", the
earlier stage's model is exported and reads the unlabelled photos (model/pseudo.py); a stage
with "init" starts from an earlier stage's weights (its best epoch, or a named checkpoint), one
with "init_trunk" (a column reader, "sequence_head": "ctc") from its conv layers only; one
with "ensemble" trains nothing but averages the named stages' readers (model/ensemble.py). The
photo reader (the stage named by export.reader, else the last) is exported to --out with its
model card; a stage with "export" (the canvas's drawing reader) to that file beside --out.
A stage whose RUNS/<run>/train.json already records a result, trained with the settings the
stage has now, is not run again, so an interrupted recipe picks up where it stopped; one trained
otherwise (other data, a quick run's epochs) stops the recipe before anything trains.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from model.cli import InputError, said_plainly
from model.data import labelled_folder, no_folder
from model.runtime import DEFAULT_DRAWING, DEFAULT_LOCATOR, DEFAULT_MODEL


def check_inputs(recipe: dict, data: str, unlabelled: str | None, mnist: str | None) -> None:
    """Every folder that some stage will need, before the first stage trains for an hour."""
    needs = {"--data": data}
    for stage in recipe["stages"]:
        if stage.get("train", {}).get("mnist"):
            needs["--mnist"] = mnist
        if "pseudo_from" in stage:
            needs["--unlabelled"] = unlabelled
    for flag, folder in needs.items():
        if not folder:
            raise InputError(f"{flag} is needed: stages of this recipe learn from it")
        if not Path(folder).is_dir():
            raise InputError(f"{flag} {no_folder(Path(folder))}")
    # What is in them too: an empty folder once failed only after the base stage's hour.
    if "--mnist" in needs:
        from model.handwriting import mnist_files

        missing = [name for name in mnist_files("train") if not (Path(mnist) / name).is_file()]
        if missing:
            raise InputError(f"--mnist {mnist}: no {' or '.join(missing)} in it (MNIST's idx files as its publisher ships them)")
    if "--unlabelled" in needs:
        from model.pseudo import photos_in

        try:
            photos_in(unlabelled)
        except InputError as error:
            raise InputError(f"--unlabelled {error}") from None


def shortened(settings: dict, overrides: dict) -> dict:
    """A stage's settings with the quick run's epochs and steps; its weight average, if any, from
    the last epoch it now has."""
    settings = {**settings, **overrides}
    if settings.get("average_from") and "epochs" in overrides:
        settings["average_from"] = min(settings["average_from"], overrides["epochs"])
    return settings


def stage_settings(stage: dict, runs: Path, mnist: str | None, unlabelled: str | None, overrides: dict) -> dict:
    """The Config fields (less data and out) a training stage is run with."""
    settings = shortened(stage.get("train", {}), overrides)
    if settings.pop("mnist", False):
        if not mnist:
            raise SystemExit(f"stage {stage['run']} learns from handwriting: give --mnist")
        settings["mnist"] = mnist
    if "pseudo_from" in stage:
        if not unlabelled:
            raise SystemExit(f"stage {stage['run']} learns from unlabelled photos: give --unlabelled")
        settings["pseudo"] = str(runs / f"pseudo-{stage['pseudo_from']}.json")
    for key in ("init", "init_trunk"):  # a stage ("stage2": its best epoch) or a checkpoint ("stage2/last.keras")
        if key in stage:
            start = runs / stage[key]
            settings[key] = str(start if start.suffix == ".keras" else start / "best.keras")
    return settings


# Where a run went, and how many processes drew its (the same) batches, change nothing in it.
UNCOMPARED = ("out", "workers")
PATHS = ("data", "mnist", "pseudo", "init", "init_trunk", "teacher")


def started_from(recorded_out: str | None, folder: Path) -> Path:
    """The working folder a run was started from, where its relative paths lead: its out, as it
    recorded it, is `folder` from there (runs/base from the repository's root). Without one, here."""
    parts = Path(recorded_out).parts if recorded_out else ()
    if not parts or Path(recorded_out).is_absolute() or ".." in parts or len(parts) > len(folder.resolve().parts) - 1:
        return Path.cwd()
    return folder.resolve().parents[len(parts) - 1]


def differences(recorded: dict, expected: dict, origin: Path | None = None) -> list[str]:
    """`key: recorded != expected` for each setting the record holds that differs: paths compared
    resolved, the record's from where its run was started (`origin`), the expected from here."""
    origin = origin or Path.cwd()
    said = []
    for key, value in expected.items():
        if key in UNCOMPARED or key not in recorded:  # a run from before a setting existed was trained without it
            continue
        was = recorded[key]
        if key in PATHS and was and value:
            was, value = (origin / was).resolve(), Path(value).resolve()
        elif key == "members":
            was, value = [(origin / p).resolve() for p in was if p], [Path(p).resolve() for p in value]
        if was != value:
            said.append(f"{key}: {recorded[key]} != {expected[key]}")
    return said


def depends_on(stage: dict) -> list[str]:
    """The earlier stages whose model this stage's run was made from."""
    starts = [stage[key].split("/")[0] for key in ("init", "init_trunk", "pseudo_from") if key in stage]
    return starts + stage.get("ensemble", [])


def finished_stages(recipe: dict, data: str, runs: Path, settings: dict, config_class) -> set[str]:
    """The stages whose folder already holds a finished run made as it would be made now, which are
    not trained again. A finished run made otherwise (other data, a quick run's epochs, a single
    run with other settings) stops the recipe before its first stage trains, rather than being kept
    or lost."""
    folder = labelled_folder(data)  # what model.train records as its data
    done, stale = set(), []
    for stage in recipe["stages"]:
        record_file = runs / stage["run"] / "train.json"
        record = json.loads(record_file.read_text()) if record_file.exists() else {}
        if not {"train_seconds", "members"} & set(record):
            continue  # never trained, or interrupted: trained (again) from the start
        if "ensemble" in stage:
            said = differences({"members": [m.get("out") for m in record["members"]]},
                               {"members": [str(runs / member) for member in stage["ensemble"]]},
                               started_from(record.get("out"), runs / stage["run"]))
        else:
            expected = asdict(config_class(data=str(folder), out=str(runs / stage["run"]), **settings[stage["run"]]))
            said = differences(record, json.loads(json.dumps(expected)),  # as JSON holds it: a tuple is a list
                               started_from(record.get("out"), runs / stage["run"]))
        said += [f"made from {runs / start}, which is trained again" for start in depends_on(stage) if start not in done]
        if said:
            stale.append((runs / stage["run"], said))
        else:
            done.add(stage["run"])
    if stale:
        (first, said), others = stale[0], [str(folder) for folder, _ in stale[1:]]
        more = f"; so do {', '.join(others)}" if others else ""
        raise InputError(f"{first} holds a run trained otherwise ({'; '.join(said)}){more}: delete "
                         f"{'them' if others else 'it'} to train again, or give another --runs")
    return done


def export_targets(recipe: dict, out: Path) -> dict[str, Path]:
    """Stage -> the .tflite it is exported to: the photo reader to `out`, a stage with "export"
    (the drawing reader) beside it."""
    reader = recipe.get("export", {}).get("reader", recipe["stages"][-1]["run"])
    targets = {reader: out}
    targets.update({stage["run"]: out.with_name(stage["export"]) for stage in recipe["stages"] if "export" in stage})
    return targets


def run_recipe(recipe: dict, data: str, unlabelled: str | None, mnist: str | None, runs: Path, out: Path,
               overrides: dict | None = None) -> dict:
    """Every stage in order; `overrides` ({"epochs": 1, "steps": 2}) shortens each, for a quick run."""
    from model.export import export, model_card
    from model.train import Config, train

    check_inputs(recipe, data, unlabelled, mnist)
    settings = {stage["run"]: stage_settings(stage, runs, mnist, unlabelled, overrides or {})
                for stage in recipe["stages"] if "ensemble" not in stage}
    done = finished_stages(recipe, data, runs, settings, Config)
    for stage in recipe["stages"]:
        folder = runs / stage["run"]
        if stage["run"] in done:
            print(f"stage {stage['run']}: already trained in {folder}")
            continue
        (runs / f"pseudo-{stage['run']}.json").unlink(missing_ok=True)  # read by the run trained over now
        if "ensemble" in stage:
            from model.ensemble import build

            print(f"stage {stage['run']}: averaging {', '.join(stage['ensemble'])} into {folder}")
            build([runs / member for member in stage["ensemble"]], folder)
            continue
        if "pseudo_from" in stage:
            pseudo_labels(runs / stage["pseudo_from"], unlabelled)
        print(f"stage {stage['run']}: training into {folder}")
        train(Config(data=data, out=str(folder), **settings[stage["run"]]), verbose=2)
    quantize = recipe.get("export", {}).get("quantize", "none")
    cards = {}
    for run, target in export_targets(recipe, out).items():
        export(runs / run / "best.keras", target, quantize)
        cards[run] = model_card(runs / run, target, quantize, None)
        target.with_suffix(".json").write_text(json.dumps(cards[run], indent=2) + "\n")
        print(f"wrote {target} ({cards[run]['bytes'] / 1e6:.1f} MB) and {target.with_suffix('.json')}")
    return cards


def pseudo_labels(run: Path, unlabelled: str) -> Path:
    """The unlabelled photos read by an earlier stage's model, at that model's 98%-right confidence."""
    from model.export import export
    from model.pseudo import label_folder

    labels = run.parent / f"pseudo-{run.name}.json"
    if not labels.exists():
        model = run / "model.tflite"
        export(run / "best.keras", model)
        threshold = json.loads((run / "train.json").read_text())["confidence_threshold"]
        labels.write_text(json.dumps(label_folder(str(model), unlabelled, threshold), indent=1))
    return labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model.train --recipe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", required=True, help="model/recipe.json")
    parser.add_argument("--data", required=True, help="labelled SVHN folder, or a root with train/")
    parser.add_argument("--unlabelled", help="folder of unlabelled photos (svhn_unlabeled)")
    parser.add_argument("--mnist", help="MNIST folder (idx files)")
    parser.add_argument("--runs", default="runs", help="where each stage's checkpoints and logs go (outside git)")
    parser.add_argument("--out", default=str(DEFAULT_MODEL))
    parser.add_argument("--epochs", type=int, help="every stage trains this many epochs instead of its own (a quick run)")
    parser.add_argument("--steps", type=int, help="and this many batches an epoch")
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in (("epochs", args.epochs), ("steps", args.steps)) if value is not None}
    if any(value < 1 for value in overrides.values()):
        parser.error("--epochs and --steps must be at least 1")
    with said_plainly():
        try:
            recipe = json.loads(Path(args.recipe).read_text())
        except json.JSONDecodeError as error:
            raise InputError(f"{args.recipe}: not valid JSON ({error})") from None
        bundled = {path.resolve() for path in (DEFAULT_MODEL, DEFAULT_DRAWING, DEFAULT_LOCATOR)}
        overwritten = [f"model/{path.name}" for path in export_targets(recipe, Path(args.out)).values() if path.resolve() in bundled]
        if overrides and overwritten:
            raise InputError(f"a shortened recipe would overwrite the bundled {', '.join(overwritten)}: give --out elsewhere")
        run_recipe(recipe, args.data, args.unlabelled, args.mnist, Path(args.runs), Path(args.out), overrides)


if __name__ == "__main__":
    main()
