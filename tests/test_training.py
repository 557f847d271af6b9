"""Tiny end-to-end training runs on fixture photos: train, export to .tflite, run with the runtime."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model import train_locator
from model.export import export, model_card
from model.runtime import Locator, Reader
from model.train import Config, train
from tests.conftest import FIXTURES


def test_train_export_and_serve(tmp_path):
    run = tmp_path / "run"
    config = Config(data=str(FIXTURES / "svhn_train"), out=str(run), epochs=2, steps=3, batch=8, widths=(8, 16),
                    dense=16, val_fraction=0.1, seed=7, dropout=0.5, weight_decay=0.05)
    result = train(config, verbose=0)
    assert result["train_images"] == 36 and result["val_images"] == 4
    assert result["samples_seen"] == 2 * 3 * 8
    import keras

    trained = keras.models.load_model(run / "last.keras")  # the regularisation asked for is the one trained with
    assert {layer.rate for layer in trained.layers if isinstance(layer, keras.layers.Dropout)} == {0.5}
    assert np.isclose(float(trained.optimizer.weight_decay), 0.05)
    assert 0.0 <= result["best_val_number_acc"] <= 1.0
    assert 0.0 <= result["confidence_threshold"] <= 1.0
    assert {p.name for p in run.iterdir()} >= {"best.keras", "last.keras", "log.csv", "train.json"}

    out = tmp_path / "tiny.tflite"
    export(run / "best.keras", out)
    out.with_suffix(".json").write_text(json.dumps(model_card(run, out, "none", None)))

    reader = Reader(out)
    assert reader.name.startswith("svhn-sequence")
    with Image.open(FIXTURES / "svhn_test" / "1.png") as image:
        reading = reader.read(image.convert("RGB"))
    assert np.isclose(sum(reading.length_probs), 1, atol=1e-4)
    assert len(reading.digit_probs) == 5 and all(np.isclose(sum(p), 1, atol=1e-4) for p in reading.digit_probs)
    assert len(reading.number) == int(np.argmax(reading.length_probs))
    assert set(reading.number) <= set("0123456789")


def test_with_handwriting_the_kept_epoch_is_best_at_photos_and_drawings(tmp_path, mnist_dir, monkeypatch):
    from model import handwriting

    monkeypatch.setattr(handwriting, "MNIST_VAL_START", 6)  # the fixture's digits 6-9 become the val split
    config = Config(data=str(FIXTURES / "svhn_train"), out=str(tmp_path), epochs=2, steps=2, batch=8, widths=(8, 16),
                    dense=16, seed=7, mnist=str(mnist_dir), handwriting_fraction=0.3)
    result = train(config, verbose=0)
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert {"val_number_acc", "val_handwriting_acc", "val_score"} <= set(log[0].split(","))
    best = dict(zip(log[0].split(","), log[result["best_epoch"]].split(",")))
    assert np.isclose(float(best["val_score"]), (result["best_val_number_acc"] + result["best_val_handwriting_acc"]) / 2)
    assert np.isclose(result["best_val_score"], float(best["val_score"]))


def test_a_drawing_reader_is_kept_on_drawings_and_learns_font_digits_too(tmp_path, mnist_dir, monkeypatch):
    from model import handwriting

    monkeypatch.setattr(handwriting, "MNIST_VAL_START", 6)
    run = tmp_path / "drawing"
    # fonts: an empty folder, so only matplotlib's own fonts are found (as on a machine without font packages)
    config = Config(data=str(FIXTURES / "svhn_train"), out=str(run), epochs=2, steps=2, batch=8, widths=(8, 16),
                    dense=16, seed=7, mnist=str(mnist_dir), handwriting_fraction=0.8, synth_fraction=0.1,
                    font_digit_share=0.2, fonts=str(tmp_path), monitor="val_handwriting_acc",
                    flag_ones=0.4, repeats=0.1, flag_reach=0.6)
    result = train(config, verbose=0)
    with open(run / "log.csv") as log:
        epochs = list(csv.DictReader(log))
    assert result["best_val_handwriting_acc"] == max(float(epoch["val_handwriting_acc"]) for epoch in epochs)
    assert result["font_digits"] >= 50 and result["font_digits"] % 10 == 0
    assert result["confidence_threshold"] is not None
    out = tmp_path / "drawing.tflite"
    export(run / "best.keras", out)
    assert model_card(run, out, "none", None)["name"].startswith("svhn-drawing-")
    with pytest.raises(ValueError, match="--mnist"):
        train(Config(data=str(FIXTURES / "svhn_train"), out=str(tmp_path / "no"), monitor="val_handwriting_acc"), verbose=0)


def test_a_teacher_makes_its_share_of_each_target():
    from model.train import Batches

    class Teacher:  # a reader that finds every length and every digit equally likely
        def run(self, batch):
            return {"length": np.full((len(batch), 6), 1 / 6, np.float32),
                    "digits": np.full((len(batch), 5, 11), 1 / 11, np.float32)}, 0.0

    photo = Image.new("L", (40, 30), 128)
    source = lambda rng: (photo, (4, 2), (5.0, 5.0, 30.0, 20.0))  # noqa: E731
    _, hard = Batches([(1.0, source)], batch=3, steps=1, seed=0)[0]
    _, taught = Batches([(1.0, source)], batch=3, steps=1, seed=0, teacher=Teacher(), teacher_weight=0.25)[0]
    assert hard["length"].tolist() == [2, 2, 2]
    assert np.allclose(taught["length"], 0.75 * np.eye(6)[[2, 2, 2]] + 0.25 / 6)
    assert np.allclose(taught["digits"][0, 1], 0.75 * np.eye(11)[2] + 0.25 / 11)  # the second digit, a 2
    assert np.allclose(taught["digits"][0, 4], 0.75 * np.eye(11)[10] + 0.25 / 11)  # no fifth digit
    assert np.allclose(taught["digits"].sum(axis=-1), 1) and np.allclose(taught["length"].sum(axis=-1), 1)


def test_a_reader_learns_from_a_teacher_file(tmp_path):
    tiny = {"data": str(FIXTURES / "svhn_train"), "steps": 2, "batch": 8, "widths": (8, 16), "dense": 16, "seed": 7}
    train(Config(out=str(tmp_path / "teacher"), epochs=1, **tiny), verbose=0)
    export(tmp_path / "teacher" / "best.keras", tmp_path / "teacher.tflite")
    result = train(Config(out=str(tmp_path / "student"), epochs=2, init=str(tmp_path / "teacher" / "best.keras"),
                          teacher=str(tmp_path / "teacher.tflite"), **tiny), verbose=0)
    log = list(csv.DictReader((tmp_path / "student" / "log.csv").open()))
    assert len(log) == 2 and all(np.isfinite(float(row["loss"])) for row in log)
    assert result["teacher"] == str(tmp_path / "teacher.tflite") and 0 <= result["best_val_number_acc"] <= 1


def test_a_teacher_run_draws_its_batches_in_one_process(tmp_path):
    with pytest.raises(ValueError, match="--workers 1"):
        train(Config(data=str(FIXTURES / "svhn_train"), out=str(tmp_path), teacher="any.tflite", workers=2), verbose=0)


def test_optional_shares_cannot_exceed_the_whole(tmp_path):
    pseudo = tmp_path / "pseudo.json"
    pseudo.write_text(json.dumps({"folder": str(FIXTURES / "svhn_test"), "labels": {"1.png": {"number": "5"}}}))
    config = Config(data=str(FIXTURES / "svhn_train"), out=str(tmp_path), synth_fraction=0.8,
                    pseudo=str(pseudo), pseudo_fraction=0.3)
    with pytest.raises(ValueError, match="more than 1"):
        train(config, verbose=0)


def test_train_export_and_run_the_localiser(tmp_path):
    run = tmp_path / "locator"
    config = train_locator.Config(data=str(FIXTURES / "svhn_train"), out=str(run), epochs=2, steps=2, batch=4,
                                  widths=(4, 4, 8, 8, 8), head=8, val_fraction=0.1, seed=7)
    result = train_locator.train(config, verbose=0)
    assert result["train_images"] == 36 and result["val_images"] == 4
    assert 0.0 <= result["best_val_found"] <= 1.0 and result["found_threshold"] is not None
    # --seed 7 changes the batches, not the held-out photos: every run is scored on the same ones
    from model.data import load_samples, split
    from model.evaluate import validation_samples

    photos = load_samples(FIXTURES / "svhn_train")
    held_out = [s.path for s in validation_samples(str(run))]
    assert held_out == [s.path for s in split(photos, 0.1, 1234)[1]] != [s.path for s in split(photos, 0.1, 7)[1]]
    assert {p.name for p in run.iterdir()} >= {"best.keras", "last.keras", "log.csv", "train.json"}

    out = tmp_path / "locator.tflite"
    export(run / "best.keras", out)
    card = model_card(run, out, "none", None)
    assert card["name"].startswith("svhn-locator") and card["found_threshold"] == result["found_threshold"]
    out.with_suffix(".json").write_text(json.dumps(card))

    locator = Locator(out)
    assert locator.threshold == result["found_threshold"]
    with Image.open(FIXTURES / "svhn_test" / "1.png") as image:
        found, model_ms = locator.find(image.convert("RGB"), limit=3)
    assert len(found) <= 3 and model_ms > 0
    for score, (left, top, width, height) in found:
        assert 0 <= score <= 1 and width > 0 and height > 0
        assert 0 <= left + width / 2 < image.width and 0 <= top + height / 2 < image.height


def test_weight_average_keeps_the_mean_of_the_last_epochs_with_batch_statistics_of_its_own():
    import keras

    from model.fitting import WeightAverage

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Dense(3)(inputs)))
    average = WeightAverage(first=2)
    average.set_model(model)
    kernels = [np.full((2, 3), float(epoch), np.float32) for epoch in range(4)]
    for epoch, kernel in enumerate(kernels):  # epochs 1 to 4; the mean is of epochs 2 to 4
        model.layers[1].kernel.assign(kernel)
        average.on_epoch_end(epoch)
    batches = [(np.random.default_rng(i).normal(5.0, 1.0, (16, 2)).astype(np.float32), None) for i in range(3)]
    average.apply(batches)
    assert np.allclose(model.layers[1].kernel.numpy(), 2.0)  # (1 + 2 + 3) / 3
    dense_out = np.concatenate([x for x, _ in batches]) @ np.full((2, 3), 2.0) + model.layers[1].bias.numpy()
    assert np.allclose(model.layers[2].moving_mean.numpy(), dense_out.mean(axis=0), rtol=1e-4)
    assert model.layers[2].momentum == 0.99  # left as it was


def test_an_averaged_run_holds_its_rate_and_keeps_the_mean(tmp_path):
    run = tmp_path / "locator"
    config = train_locator.Config(data=str(FIXTURES / "svhn_train"), out=str(run), epochs=2, steps=2, batch=4,
                                  widths=(4, 4, 8, 8, 8), head=8, seed=7, average_from=2, letters=0.5,
                                  lr=1e-3)
    result = train_locator.train(config, verbose=0)
    assert result["averaged_epochs"] == [2, 2] and result["best_epoch"] is None
    assert result["found_threshold"] is not None and 0.0 <= result["best_val_found"] <= 1.0
    import keras

    from model.locator_net import locator_loss

    last = keras.models.load_model(run / "last.keras", custom_objects={"locator_loss": locator_loss})
    kept = keras.models.load_model(run / "best.keras", compile=False)
    assert np.isclose(float(last.optimizer.learning_rate), 1e-3)  # not decayed: the rate is held
    norms = [i for i, layer in enumerate(last.layers) if isinstance(layer, keras.layers.BatchNormalization)]
    convs = [i for i, layer in enumerate(last.layers) if isinstance(layer, keras.layers.Conv2D)]
    assert all(np.array_equal(last.layers[i].kernel.numpy(), kept.layers[i].kernel.numpy()) for i in convs)
    assert not all(np.allclose(last.layers[i].moving_mean.numpy(), kept.layers[i].moving_mean.numpy()) for i in norms)
    with pytest.raises(ValueError, match="average-from 3"):
        train_locator.train(train_locator.Config(data=str(FIXTURES / "svhn_train"), out=str(tmp_path / "x"),
                                                 epochs=2, steps=1, average_from=3), verbose=0)


def test_recipe_runs_every_stage_and_resumes(tmp_path, capsys):
    """A recipe as model/recipe.json writes it: the second stage learns from photos the first one
    labelled and starts from its weights, a third averages both; the photo reader named by
    export.reader (the average) goes to --out, a stage with "export" beside it; a second call
    runs nothing again."""
    from model.recipe import run_recipe

    tiny = {"epochs": 1, "steps": 2, "batch": 8, "widths": [8, 16], "dense": 16, "seed": 7}
    recipe = {"stages": [{"run": "first", "train": tiny},
                         {"run": "second", "pseudo_from": "first", "init": "first", "export": "other.tflite",
                          "train": {**tiny, "font_fraction": 0.2, "pseudo_fraction": 0.2}},
                         {"run": "both", "ensemble": ["first", "second"]}],
              "export": {"quantize": "none", "reader": "both"}}
    out = tmp_path / "bundled.tflite"
    args = (recipe, str(FIXTURES / "svhn_train"), str(FIXTURES / "svhn_test"), None, tmp_path / "runs", out)
    cards = run_recipe(*args)
    second = json.loads((tmp_path / "runs" / "second" / "train.json").read_text())
    assert second["init"].endswith("first/best.keras") and second["pseudo"].endswith("pseudo-first.json")
    labelled = json.loads((tmp_path / "runs" / "pseudo-first.json").read_text())
    assert labelled["photos"] == 50 and set(cards) == {"both", "second"}
    assert Reader(out).name == cards["both"]["name"] and cards["both"]["name"].endswith("-both")
    assert [Path(m["out"]).name for m in cards["both"]["training"]["members"]] == ["first", "second"]
    assert Reader(tmp_path / "other.tflite").name == cards["second"]["name"]
    capsys.readouterr()
    run_recipe(*args)
    assert capsys.readouterr().out.count("already trained") == 3


def test_a_shortened_recipe_trains_each_stage_briefly_and_keeps_the_bundled_reader(tmp_path):
    from model.recipe import main, run_recipe, shortened

    assert shortened({"epochs": 40, "average_from": 6, "lr": 5e-4}, {"epochs": 1, "steps": 2}) == \
        {"epochs": 1, "steps": 2, "average_from": 1, "lr": 5e-4}
    long = {"epochs": 40, "steps": 200, "batch": 8, "widths": [8, 16], "dense": 16, "average_from": 6}
    run_recipe({"stages": [{"run": "long", "train": long}], "export": {"quantize": "none"}},
               str(FIXTURES / "svhn_train"), None, None, tmp_path / "runs", tmp_path / "r.tflite", {"epochs": 1, "steps": 2})
    record = json.loads((tmp_path / "runs" / "long" / "train.json").read_text())
    assert record["epochs"] == 1 and record["steps"] == 2 and (tmp_path / "r.tflite").exists()
    with pytest.raises(SystemExit) as caught:  # the bundled file is the default --out
        main(["--recipe", "model/recipe.json", "--data", str(FIXTURES / "svhn_train"), "--epochs", "1"])
    assert caught.value.code == "error: a shortened recipe would overwrite the bundled model/svhn.tflite, model/drawing.tflite: give --out elsewhere"


def test_a_recipe_stage_starts_a_column_reader_from_an_earlier_stages_trunk(tmp_path):
    from model.recipe import run_recipe

    tiny = {"epochs": 1, "steps": 1, "batch": 4, "widths": [8, 16], "dense": 8, "seed": 7}
    recipe = {"stages": [{"run": "first", "train": tiny},
                         {"run": "columns", "init_trunk": "first", "train": {**tiny, "sequence_head": "ctc"}}],
              "export": {"quantize": "none"}}
    run_recipe(recipe, str(FIXTURES / "svhn_train"), None, None, tmp_path / "runs", tmp_path / "reader.tflite")
    columns = json.loads((tmp_path / "runs" / "columns" / "train.json").read_text())
    assert columns["init_trunk"] == str(tmp_path / "runs" / "first" / "best.keras")
    assert columns["sequence_head"] == "ctc" and columns["trunk_layers_copied"] > 0
    assert Reader(tmp_path / "reader.tflite").name.endswith("-columns")


def test_ensemble_averages_its_members_probabilities(tmp_path):
    import keras

    from model.ensemble import build

    tiny = {"data": str(FIXTURES / "svhn_train"), "epochs": 1, "steps": 2, "batch": 8, "dense": 16, "seed": 7}
    train(Config(out=str(tmp_path / "a"), widths=(8, 16), **tiny), verbose=0)
    train(Config(out=str(tmp_path / "b"), widths=(8, 8), **tiny), verbose=0)
    record = build([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")
    assert record["val_images"] == 4 and len(record["members"]) == 2 and 0 <= record["confidence_threshold"] <= 1

    x = np.random.default_rng(0).normal(size=(3, 64, 64, 1)).astype(np.float32)
    members = [keras.models.load_model(tmp_path / run / "best.keras", compile=False)(x) for run in ("a", "b")]
    both = keras.models.load_model(tmp_path / "ab" / "best.keras", compile=False)(x)
    for head in ("length", "digits"):
        expected = (np.asarray(members[0][head]) + np.asarray(members[1][head])) / 2
        assert np.allclose(np.asarray(both[head]), expected, atol=1e-6)

    # A member with other batches (--seed) holds out the same photos; one with another --val-seed
    # does not, and members without a common validation set cannot be scored together.
    train(Config(out=str(tmp_path / "c"), widths=(8, 8), **{**tiny, "seed": 8}), verbose=0)
    assert build([tmp_path / "a", tmp_path / "c"], tmp_path / "ac")["val_images"] == 4
    train(Config(out=str(tmp_path / "d"), widths=(8, 8), **{**tiny, "val_seed": 8}), verbose=0)
    with pytest.raises(ValueError, match="held out different photos"):
        build([tmp_path / "a", tmp_path / "d"], tmp_path / "ad")


def test_recipe_asks_for_the_folders_its_stages_need(tmp_path):
    from model.recipe import run_recipe

    from model.cli import InputError

    recipe = {"stages": [{"run": "hand", "train": {"mnist": True}}]}
    with pytest.raises(InputError, match="--mnist"):
        run_recipe(recipe, str(FIXTURES / "svhn_train"), None, None, tmp_path, tmp_path / "m.tflite")


def test_the_localisers_defaults_are_those_the_bundled_one_was_trained_with():
    # The README's and the Makefile's command (no settings but the folders) must train the
    # bundled localiser again; its card records what it was trained with.
    card = json.loads((Path(train_locator.__file__).parent / "locator.json").read_text())["training"]
    defaults = train_locator.Config(data="")
    for key in ("epochs", "steps", "batch", "lr", "val_fraction", "seed"):
        assert getattr(defaults, key) == card[key], key
    assert list(defaults.widths) == card["widths"]


def test_digit_free_pictures_rarely_clear_the_found_threshold():
    from model.calibrate import negative_scores
    from model.data import load_samples
    from model.pipeline import Pipeline
    from model.synth import walls_of
    from model.heatmap import FALSE_ALARMS

    pipeline, samples = Pipeline(), load_samples(FIXTURES / "svhn_train")[:8]
    walls = sum(len(walls_of(s, Image.open(s.path), min_size=24)) for s in samples)
    scores = negative_scores(pipeline, samples)
    assert len(scores) == 2 * walls and ((scores >= 0) & (scores <= 1)).all()
    # the bundled threshold was set on other photos: a few of these may clear it, not many
    assert (scores >= pipeline.locator.threshold).mean() <= 4 * FALSE_ALARMS


def test_the_confident_threshold_is_set_on_the_pipelines_found_answers(monkeypatch):
    from model import calibrate
    from model.pipeline import Answer, Candidate
    from model.runtime import Reading

    # Each protocol's pictures carry their answer's confidence as their grey level; those below
    # 0.5 are read wrong, as is 0.97, which the fake pipeline does not find: it must not count.
    levels = {"crop": [0.9, 0.8, 0.7], "whole": [0.6, 0.55, 0.4], "scene": [0.97, 0.95, 0.2]}
    monkeypatch.setattr(calibrate, "pictures", lambda samples, protocol: [
        ("p", Image.new("L", (8, 8), round(level * 100)).convert("RGB"), "1" if 0.5 <= level < 0.97 else "2")
        for level in levels[protocol]])

    class Found:
        def read(self, image):
            confidence = image.getpixel((0, 0))[0] / 100
            reading = Reading("1", confidence, False, [], [], 0.0)
            return Answer(confidence != 0.97, Candidate((0, 0, 8, 8), 0.9, reading), [], 0.0)

    # found: 0.95 0.9 0.8 0.7 0.6 0.55 right, then 0.4 and 0.2 wrong: all right down to 0.55
    assert calibrate.answer_threshold(Found(), []) == pytest.approx(0.55)


def test_a_boolean_setting_is_spelt_out_on_the_command_line(monkeypatch):
    from model.cli import parse_config

    for value, expected in (("false", False), ("True", True)):
        monkeypatch.setattr("sys.argv", ["train", "--data", "d", "--augment", value])
        assert parse_config(Config, "")[0].augment is expected
    monkeypatch.setattr("sys.argv", ["train", "--data", "d", "--augment", "0"])
    with pytest.raises(SystemExit):
        parse_config(Config, "")


def test_the_same_training_code_runs_on_jax_without_tensorflow(tmp_path):
    """A GPU machine has JAX and no TensorFlow: both networks must train there (KERAS_BACKEND=jax,
    TensorFlow made unimportable), and their checkpoints must export and serve here."""
    script = f"""
import sys
sys.modules["tensorflow"] = None  # any import of it now fails, as on the GPU machine
import keras
assert keras.backend.backend() == "jax"
from model import train, train_locator
train.train(train.Config(data={str(FIXTURES / "svhn_train")!r}, out={str(tmp_path / "reader")!r}, epochs=1, steps=2, batch=8,
                              workers=2), verbose=0)  # worker processes draw the batches, as for a GPU
train_locator.train(train_locator.Config(data={str(FIXTURES / "svhn_train")!r}, out={str(tmp_path / "locator")!r}, epochs=1,
                                         steps=2, batch=4, widths=(4, 4, 8, 8, 8), head=8, average_from=1,
                                         workers=2), verbose=0)
"""
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    with Image.open(FIXTURES / "svhn_test" / "1.png") as image:
        picture = image.convert("RGB")
    export(tmp_path / "reader" / "best.keras", tmp_path / "svhn.tflite")
    reading = Reader(tmp_path / "svhn.tflite").read(picture)
    assert len(reading.digit_probs) == 5 and 0.0 <= reading.confidence <= 1.0
    export(tmp_path / "locator" / "best.keras", tmp_path / "locator.tflite")
    found, _ = Locator(tmp_path / "locator.tflite").find(picture)
    assert all(0.0 <= score <= 1.0 for score, _ in found)
