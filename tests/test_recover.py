"""Reading a bundled reader's weights back out of its .tflite (model/recover.py)."""
import json

import numpy as np
import pytest

from model.export import export, model_card
from model.recover import recover
from model.runtime import LiteModel
from tests.conftest import FIXTURES

# The split each member made (held_out_by): --data's statistics come from the photos it trained on.
SPLIT = {"data": "svhn_train", "val_fraction": 0.1, "seed": 1}
MEMBERS = [{"widths": [8, 16], "dense": 16, **SPLIT}, {"widths": [8, 8], "dense": 16, **SPLIT}]


def a_run(tmp_path, members):
    """A reader run as model.ensemble leaves one, its networks' weights and batch norms made up."""
    import keras

    from model.ensemble import average
    from model.net import build_model

    rng = np.random.default_rng(3)
    models = []
    for member in members:
        model = build_model(tuple(member["widths"]), member["dense"])
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                n = layer.gamma.shape[0]
                # Statistics far from the identity, so a fold that dropped any of them would show.
                layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n), rng.normal(0, 0.5, n), rng.uniform(0.5, 2, n)])
        models.append(model)
    model = average(models) if len(models) > 1 else models[0]
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "best.keras")
    record = {"val_images": 4, "best_val_number_acc": 0.5, "best_epoch": 3, "confidence_threshold": 0.7}
    record.update({"members": members} if len(members) > 1 else members[0])
    (run / "train.json").write_text(json.dumps(record))
    return model


def without_dropout(checkpoint):
    """A recovered network whose only difference between training and inference is its batch norms."""
    import keras

    model = keras.models.load_model(checkpoint, compile=False)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model


@pytest.mark.parametrize("members", [MEMBERS, MEMBERS[:1]], ids=["two averaged", "one"])
@pytest.mark.parametrize("quantize", ["none", "dynamic"])
def test_the_recovered_network_computes_what_the_file_computes(tmp_path, members, quantize):
    import keras

    original = a_run(tmp_path, members)
    tflite = tmp_path / "svhn.tflite"
    export(tmp_path / "run" / "best.keras", tflite, quantize)
    tflite.with_suffix(".json").write_text(json.dumps(model_card(tmp_path / "run", tflite, quantize, None)))

    recover(tflite, tmp_path / "recovered")
    recovered = keras.models.load_model(tmp_path / "recovered" / "best.keras", compile=False)
    x = np.random.default_rng(0).normal(size=(4, 64, 64, 1)).astype(np.float32)
    lite = LiteModel(tflite)
    from_file = [lite.run(x[i:i + 1])[0] for i in range(len(x))]
    ours, theirs = recovered(x), original(x)
    # int8 weights (and activations quantised on the fly) move the probabilities a little.
    tolerance = 1e-4 if quantize == "none" else 0.05
    for head in ("length", "digits"):
        file_head = np.concatenate([out[head] for out in from_file])
        assert np.allclose(np.asarray(ours[head]), file_head, atol=tolerance)
        assert np.allclose(np.asarray(ours[head]), np.asarray(theirs[head]), atol=tolerance)

    record = json.loads((tmp_path / "recovered" / "train.json").read_text())
    assert record["recovered_from"] == str(tflite) and record["recovered_quantization"] == quantize
    # What model.export needs to write the card of the file it freezes again.
    assert (record["best_val_number_acc"], record["best_epoch"], record["confidence_threshold"]) == (0.5, 3, 0.7)


def test_a_card_that_does_not_match_the_file_is_refused(tmp_path):
    a_run(tmp_path, MEMBERS)
    tflite = tmp_path / "svhn.tflite"
    export(tmp_path / "run" / "best.keras", tflite)
    card = model_card(tmp_path / "run", tflite, "none", None)
    card["training"] = MEMBERS[0]  # one network's record for a file of two
    tflite.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="2 networks"):
        recover(tflite, tmp_path / "recovered")


def test_with_the_photos_its_batch_norms_train_on_from_where_they_were(tmp_path):
    """A bare recovery's batch norms pass their input through: exact at inference, but training
    normalises by each batch's statistics and starts from another function. With --data's photos
    they hold those statistics and undo them: the same function either way."""
    from model.fitting import crop_inputs, training_photos

    original = a_run(tmp_path, MEMBERS[:1])
    tflite = tmp_path / "svhn.tflite"
    export(tmp_path / "run" / "best.keras", tflite)
    tflite.with_suffix(".json").write_text(json.dumps(model_card(tmp_path / "run", tflite, "none", None)))
    recover(tflite, tmp_path / "bare")
    recover(tflite, tmp_path / "restored", data=str(FIXTURES / "svhn_train"))

    _, train_samples, _, images = training_photos(str(FIXTURES / "svhn_train"), SPLIT["val_fraction"], SPLIT["seed"])
    x = crop_inputs(train_samples, images)  # the photos the statistics came from, as one batch
    expected = np.asarray(original(x)["digits"])
    shift = {}
    for name in ("bare", "restored"):
        model = without_dropout(tmp_path / name / "best.keras")
        assert np.allclose(np.asarray(model(x)["digits"]), expected, atol=1e-4)
        shift[name] = np.abs(np.asarray(model(x, training=True)["digits"]) - expected).max()
    assert shift["restored"] < 1e-3 < 0.05 < shift["bare"]
    assert json.loads((tmp_path / "restored" / "train.json").read_text())["batch_norm_statistics_from"] == str(FIXTURES / "svhn_train")


def test_a_drawing_readers_batch_norms_also_take_their_statistics_from_drawings(tmp_path, mnist_dir):
    """The drawing reader learnt mostly from drawings, so batches of photos' statistics alone are
    not its batches. With --mnist, drawings take its handwriting share of the statistics' inputs,
    and on such a batch training computes what inference does."""
    from model.recover import statistics_inputs

    member = {**MEMBERS[0], "mnist": str(mnist_dir), "handwriting_fraction": 0.75}
    original = a_run(tmp_path, [member])
    tflite = tmp_path / "drawing.tflite"
    export(tmp_path / "run" / "best.keras", tflite)
    tflite.with_suffix(".json").write_text(json.dumps(model_card(tmp_path / "run", tflite, "none", None)))
    recover(tflite, tmp_path / "photos", data=str(FIXTURES / "svhn_train"))
    recover(tflite, tmp_path / "mixed", data=str(FIXTURES / "svhn_train"), mnist=str(mnist_dir))

    x = statistics_inputs(str(FIXTURES / "svhn_train"), SPLIT["val_fraction"], SPLIT["seed"], str(mnist_dir), 0.75)
    photos = len(statistics_inputs(str(FIXTURES / "svhn_train"), SPLIT["val_fraction"], SPLIT["seed"]))
    assert len(x) == photos + 384  # 0.75 of 512, and every training photo the fixture has
    expected = np.asarray(original(x)["digits"])
    shift = {}
    for name in ("photos", "mixed"):
        model = without_dropout(tmp_path / name / "best.keras")
        shift[name] = np.abs(np.asarray(model(x, training=True)["digits"]) - expected).max()
    assert shift["mixed"] < 1e-3 < 0.01 < shift["photos"]
    assert json.loads((tmp_path / "mixed" / "train.json").read_text())["batch_norm_drawings_from"] == str(mnist_dir)
