"""Reading a bundled reader's weights back out of its .tflite (model/recover.py)."""
import json

import numpy as np
import pytest

from model.export import export, model_card
from model.recover import recover
from model.runtime import LiteModel

MEMBERS = [{"widths": [8, 16], "dense": 16}, {"widths": [8, 8], "dense": 16}]


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
