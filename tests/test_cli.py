"""The training side's command lines, as a user meets them: a mistake in what they point at is one
line and a non-zero exit, before any training starts or any bundled file is overwritten."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.cli import InputError
from model.data import load_samples
from model.pseudo import photos_in
from model.recipe import check_inputs, export_targets
from model.recipe import main as recipe_main
from scripts.device_bundle import bundle
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parent.parent


def command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def said_in_one_line(done: subprocess.CompletedProcess, words: str) -> None:
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert words in last, done.stderr


def test_a_missing_data_folder_is_one_line(tmp_path):
    said_in_one_line(command("model.train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")),
                     "nowhere: no such folder")
    assert not (tmp_path / "run").exists()


def test_an_archive_given_as_data_is_called_one(tmp_path):
    # "no such folder" for a file that is there: the user had given the archive, not what it unpacks into.
    archive = tmp_path / "train.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    said_in_one_line(command("model.train", "--data", str(archive), "--out", str(tmp_path / "run")),
                     f"{archive} is an archive, not a folder: unpack it")
    with pytest.raises(InputError, match=f"--data {archive} is an archive, not a folder: .*model.data download"):
        check_inputs({"stages": [{"run": "base"}]}, str(archive), None, None)


@pytest.mark.parametrize("flags, words", [
    (("--epochs", "0"), "--epochs must be at least 1"),
    (("--monitor", "val_acc"), "invalid choice: 'val_acc'"),
])
def test_a_flag_out_of_range_is_refused_before_anything_loads(tmp_path, flags, words):
    done = command("model.train", "--data", str(FIXTURES / "svhn_train"), "--out", str(tmp_path / "run"), *flags)
    assert done.returncode == 2 and words in done.stderr, done.stderr


def test_the_recipe_names_a_missing_folder_before_its_first_stage(tmp_path, mnist_dir):
    # Its second stage needs the unlabelled photos: without them, it once trained an hour first.
    recipe = json.loads((ROOT / "model" / "recipe.json").read_text())
    Image.new("RGB", (8, 8)).save(tmp_path / "1.png")
    with pytest.raises(InputError, match="--unlabelled is needed"):
        check_inputs(recipe, str(FIXTURES / "svhn_train"), None, str(mnist_dir))
    with pytest.raises(InputError, match="--mnist .*nowhere: no such folder"):
        check_inputs(recipe, str(FIXTURES / "svhn_train"), str(tmp_path), str(tmp_path / "nowhere"))
    check_inputs(recipe, str(FIXTURES / "svhn_train"), str(tmp_path), str(mnist_dir))
    said_in_one_line(command("model.train", f"--recipe={tmp_path / 'missing.json'}", "--data", "x"), "missing.json")


def test_the_recipe_names_an_empty_unlabelled_or_mnist_folder_before_its_first_stage(tmp_path, mnist_dir):
    # Both were only opened after the base stage had trained (55 minutes on this CPU).
    recipe = json.loads((ROOT / "model" / "recipe.json").read_text())
    empty, photos = tmp_path / "empty", tmp_path / "photos"
    empty.mkdir()
    photos.mkdir()
    Image.new("RGB", (8, 8)).save(photos / "1.png")
    with pytest.raises(InputError, match=f"--unlabelled {empty}: no pictures in it"):
        check_inputs(recipe, str(FIXTURES / "svhn_train"), str(empty), str(mnist_dir))
    with pytest.raises(InputError, match=f"--mnist {empty}: no train-images-idx3-ubyte.gz or train-labels-idx1-ubyte.gz"):
        check_inputs(recipe, str(FIXTURES / "svhn_train"), str(photos), str(empty))


def test_a_damaged_photo_is_named_where_training_and_evaluation_open_them(tmp_path):
    import shutil

    from model.evaluate import pictures
    from model.fitting import training_photos

    folder = tmp_path / "train"
    shutil.copytree(FIXTURES / "svhn_train", folder)
    whole = (folder / "3.png").read_bytes()
    (folder / "3.png").write_bytes(whole[: len(whole) // 2])  # Pillow opens it; reading its pixels fails
    with pytest.raises(InputError, match=f"{folder / '3.png'}: not a picture that can be read"):
        training_photos(str(folder), 0.1, 1234)
    with pytest.raises(InputError, match=f"{folder / '3.png'}: not a picture that can be read"):
        pictures(load_samples(folder), "crop")


def finished(runs: Path, run: str, **settings) -> None:
    """A finished model.train run in RUNS/RUN as train.json records it, without training one."""
    from dataclasses import asdict

    from model.train import Config

    config = Config(data=str(FIXTURES / "svhn_train"), out=str(runs / run), **settings)
    (runs / run).mkdir(parents=True)
    (runs / run / "train.json").write_text(json.dumps(dict(asdict(config), train_seconds=1, best_val_number_acc=0.5)))


def refused_before_training(monkeypatch, recipe: dict, runs: Path, data: str = str(FIXTURES / "svhn_train"),
                            overrides: dict | None = None) -> str:
    import model.train
    from model.recipe import run_recipe

    monkeypatch.setattr(model.train, "train", lambda *args, **kwargs: pytest.fail("a stage trained before the check"))
    with pytest.raises(InputError) as caught:
        run_recipe(recipe, data, None, None, runs, runs / "reader.tflite", overrides)
    return str(caught.value)


def test_a_stage_trained_otherwise_is_named_before_any_stage_trains(tmp_path, monkeypatch):
    # A finished run was once skipped whatever it had been trained with: another --data, or a quick
    # run's epochs, went unnoticed, and the recipe exported the old model.
    recipe = {"stages": [{"run": "base", "train": {}}, {"run": "second", "init": "base", "train": {"epochs": 3}}]}
    finished(tmp_path, "base", epochs=1, steps=2)
    said = refused_before_training(monkeypatch, recipe, tmp_path, overrides={"epochs": 3, "steps": 5})
    assert said.startswith(f"{tmp_path / 'base'} holds a run trained otherwise (epochs: 1 != 3; steps: 2 != 5)")
    assert said.endswith("delete it to train again, or give another --runs")
    other = tmp_path / "other"
    other.mkdir()
    (other / "labels.json").write_text((FIXTURES / "svhn_train" / "labels.json").read_text())
    said = refused_before_training(monkeypatch, recipe, tmp_path, str(other), {"epochs": 1, "steps": 2})
    assert f"data: {FIXTURES / 'svhn_train'} != {other}" in said


def test_a_stage_made_from_one_trained_again_is_named_too(tmp_path, monkeypatch):
    from model.recipe import finished_stages, stage_settings
    from model.train import Config

    recipe = {"stages": [{"run": "base", "train": {}}, {"run": "second", "init": "base", "train": {}}]}
    finished(tmp_path, "second", init=str(tmp_path / "base" / "best.keras"))
    said = refused_before_training(monkeypatch, recipe, tmp_path)
    assert said.startswith(f"{tmp_path / 'second'} holds a run trained otherwise (made from {tmp_path / 'base'}, "
                           "which is trained again)")
    finished(tmp_path, "base")  # the same settings, the data named another way: both are kept
    settings = {stage["run"]: stage_settings(stage, tmp_path, None, None, {}) for stage in recipe["stages"]}
    data = str(Path(FIXTURES.relative_to(ROOT)) / "svhn_train")
    monkeypatch.chdir(ROOT)
    assert finished_stages(recipe, data, tmp_path, settings, Config) == {"base", "second"}


def test_a_run_recorded_with_relative_paths_is_kept_from_another_folder(tmp_path, monkeypatch):
    # Started from a project folder as `--runs runs --data data/svhn`, resumed from elsewhere with
    # whole paths: the record's relative paths lead from where it was started, not from here.
    import shutil
    from dataclasses import asdict

    from model.recipe import finished_stages, stage_settings
    from model.train import Config

    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "svhn_train", project / "data" / "svhn" / "train")
    recipe = {"stages": [{"run": "base", "train": {}}, {"run": "second", "init": "base", "train": {}}]}
    for run, settings in (("base", {}), ("second", {"init": "runs/base/best.keras"})):
        config = Config(data="data/svhn/train", out=f"runs/{run}", **settings)
        (project / "runs" / run).mkdir(parents=True)
        (project / "runs" / run / "train.json").write_text(json.dumps(dict(asdict(config), train_seconds=1)))
    runs = project / "runs"
    settings = {stage["run"]: stage_settings(stage, runs, None, None, {}) for stage in recipe["stages"]}
    monkeypatch.chdir(tmp_path)
    assert finished_stages(recipe, str(project / "data" / "svhn"), runs, settings, Config) == {"base", "second"}


def test_export_with_a_wrong_test_folder_writes_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"")  # never read: the test folder is checked first
    (run / "train.json").write_text(json.dumps({"val_images": 4, "best_val_number_acc": 0.5, "best_epoch": 1}))
    out = tmp_path / "svhn.tflite"
    said_in_one_line(command("model.export", "--run", str(run), "--out", str(out), "--test-data", str(tmp_path / "nowhere")),
                     "no such folder")
    assert not out.exists() and not out.with_suffix(".json").exists()
    said_in_one_line(command("model.export", "--run", str(tmp_path / "norun"), "--out", str(out)), "no such checkpoint")


def test_export_of_an_interrupted_run_leaves_the_old_model_and_card(tmp_path):
    # It once wrote the new .tflite, then failed on the card's missing figures: a new model beside the old card.
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"")  # never read: the record is checked first
    (run / "log.csv").write_text("epoch,loss\n0,1.0\n")
    (run / "train.json").write_text(json.dumps({"data": "data/svhn/train", "epochs": 50, "val_images": 4}))
    out = tmp_path / "svhn.tflite"
    out.write_bytes(b"the old model")
    out.with_suffix(".json").write_text("{}")
    said_in_one_line(command("model.export", "--run", str(run), "--out", str(out)),
                     f"{run} was interrupted: its train.json holds no result")
    assert out.read_bytes() == b"the old model" and out.with_suffix(".json").read_text() == "{}"


def test_a_run_stopped_at_a_time_limit_is_exported_as_its_best_epoch_so_far(tmp_path):
    # scripts/device_train.sh stops a GPU machine's run before its last epoch; best.keras holds the
    # best epoch so far, and log.csv (epochs counted from 0) says which and what it scored.
    from model.export import finished_record

    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("epoch,loss,val_number_acc\n0,3.0,0.40\n1,2.0,0.71\n2,1.9,0.65\n")
    (run / "train.json").write_text(json.dumps({"epochs": 50, "val_images": 200, "monitor": "auto"}))
    record = finished_record(run)
    assert record["best_epoch"] == 2 and record["best_val_number_acc"] == 0.71 and record["stopped_after_epochs"] == 3


@pytest.mark.parametrize("out", ["model/svhn.tflite", "model/quick.tflite"])
def test_a_shortened_recipe_never_writes_over_a_bundled_model(out):
    # model/quick.tflite is no bundled file, but the drawing reader would go beside it, over model/drawing.tflite.
    with pytest.raises(SystemExit, match=r"error: a shortened recipe would overwrite the bundled .*drawing\.tflite"):
        recipe_main(["--recipe", "model/recipe.json", "--data", "x", "--epochs", "1", "--out", str(ROOT / out)])


def test_a_shortened_recipe_writes_every_model_beside_its_out(tmp_path):
    recipe = json.loads((ROOT / "model" / "recipe.json").read_text())
    targets = export_targets(recipe, tmp_path / "svhn.tflite")
    assert set(targets.values()) == {tmp_path / "svhn.tflite", tmp_path / "drawing.tflite"}


def test_export_writes_only_where_it_is_told(tmp_path):
    # It once defaulted to the bundled reader, which a single run's float32 network then replaced.
    done = command("model.export", "--run", str(tmp_path))
    assert done.returncode == 2 and "--out" in done.stderr, done.stderr


def test_a_missing_model_file_is_one_line(tmp_path):
    said_in_one_line(command("model.evaluate", "--data", str(FIXTURES / "svhn_test"), "--protocol", "crop",
                             "--model", str(tmp_path / "nope.tflite")), "nope.tflite: no such model file")


def test_unlabelled_photos_are_found_whatever_their_extension(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        photos_in(str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="no pictures in it"):
        photos_in(str(tmp_path))  # pseudo-labelling once found nothing here, and training went on without a word
    for name in ("a.jpeg", "b.JPG", "c.webp", "d.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name, format={"JPG": "JPEG"}.get(name[2:].upper(), name[2:].upper()))
    (tmp_path / "notes.txt").write_text("not a photo")
    assert [path.name for path in photos_in(str(tmp_path))] == ["a.jpeg", "b.JPG", "c.webp", "d.png"]


def test_the_device_bundle_keeps_the_photos_labels_and_held_out_order(tmp_path, mnist_dir):
    sizes = bundle(FIXTURES / "svhn_train", mnist_dir, None, tmp_path / "bundle")
    assert set(sizes) == {"mnist", "svhn"}
    ours, theirs = load_samples(tmp_path / "bundle" / "svhn"), load_samples(FIXTURES / "svhn_train")
    assert [(s.path.name, s.digits, s.boxes) for s in ours] == [(s.path.name, s.digits, s.boxes) for s in theirs]
    for mine, original in zip(ours[:5], theirs[:5]):  # grey, as training reads every photo, and the same pixels
        with Image.open(mine.path) as grey, Image.open(original.path) as colour:
            assert grey.mode == "L" and np.array_equal(np.asarray(grey), np.asarray(colour.convert("L")))


@pytest.mark.parametrize("share", [1.0, -0.1])
def test_a_font_digit_share_that_leaves_no_mnist_digit_is_refused_at_once(share):
    # 1.0 divided by zero when the glyphs' copies were counted, after the photos had loaded.
    from model.train import Config, train

    with pytest.raises(InputError, match=f"--font-digit-share {share}: from 0 up to"):
        train(Config(data="nowhere", font_digit_share=share))


@pytest.mark.parametrize("flag", ["flag_ones", "repeats"])
def test_a_share_of_handwriting_outside_0_to_1_is_refused_at_once(flag):
    from model.train import Config, train

    with pytest.raises(InputError, match=f"--{flag.replace('_', '-')} 1.5: a share, from 0 to 1"):
        train(Config(data="nowhere", **{flag: 1.5}))


@pytest.mark.parametrize("reach", [0.1, 1.5])
def test_a_flag_shorter_than_its_shortest_or_longer_than_its_stick_is_refused_at_once(reach):
    from model.train import Config, train

    with pytest.raises(InputError, match=f"--flag-reach {reach}: a share of the stick's length, from 0.15 to 1"):
        train(Config(data="nowhere", flag_reach=reach))


def test_a_damaged_unlabelled_photo_is_skipped_by_name(tmp_path, capsys):
    from model.pseudo import label_folder

    folder = tmp_path / "unlabelled"
    folder.mkdir()
    whole = (FIXTURES / "svhn_test" / "2.png").read_bytes()
    (folder / "good.png").write_bytes(whole)
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])
    record = label_folder(str(Path(__file__).resolve().parent.parent / "model" / "svhn.tflite"), str(folder), threshold=0.0)
    assert record["photos"] == 1 and list(record["labels"]) == ["good.png"]
    assert f"{folder / 'cut.png'}: skipped" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["hershey_digits", "make_heic_fixture", "samples", "screenshot", "wide_gaps", "ones", "device_bundle"])
def test_a_scripts_help_is_its_usage_and_nothing_more(tmp_path, script):
    # `--help` had run the scripts: screenshot.py wrote its PNGs into ./--help/, make_heic_fixture
    # rewrote the fixture. It must also work without what only a run needs (hershey_digits' font package).
    written = [FIXTURES / "heic" / "11-orientation6.heic", FIXTURES / "hershey_digits.json", ROOT / "static/samples/samples.json"]
    before = [path.read_bytes() for path in written]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{script}.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.startswith("usage:"), done.stderr
    assert list(tmp_path.iterdir()) == [] and [path.read_bytes() for path in written] == before
