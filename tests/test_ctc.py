"""The column reader (model/ctc.py): greedy decoding into the two heads, its loss, its trunk, its export."""
import json

import keras
import numpy as np
import pytest
from PIL import Image

from model.ctc import COLUMNS, ColumnsToHeads, build_ctc_model, ctc_loss, load_trunk
from model.decode import BLANK, decode_batch
from model.export import export, model_card
from model.net import build_model
from model.runtime import Reader
from model.train import Config, train
from tests.conftest import FIXTURES


def columns_reading(*marks: tuple[int, int]) -> np.ndarray:
    """Logits of one image whose columns are blank but for (column, digit) marks."""
    logits = np.full((COLUMNS, BLANK + 1), -4.0, np.float32)
    logits[:, BLANK] = 4.0
    for column, digit in marks:
        logits[column] = -4.0
        logits[column, digit] = 4.0
    return logits


def read(*images: np.ndarray) -> list[tuple[str, float]]:
    heads = ColumnsToHeads()(np.stack(images))
    return decode_batch(keras.ops.convert_to_numpy(heads["length"]), keras.ops.convert_to_numpy(heads["digits"]))


def test_columns_are_read_as_ctc_reads_them():
    readings = read(
        columns_reading((2, 3), (3, 3), (6, 7), (7, 0)),  # a digit over two columns is one digit
        columns_reading((2, 1), (4, 1)),                    # a blank between two 1s keeps both
        columns_reading(),                                  # all blank: no number
        columns_reading(*[(c, c % 10) for c in range(0, COLUMNS, 2)]),  # 8 digits: the first 5 are kept
    )
    assert [number for number, _ in readings] == ["370", "11", "", "02468"]
    # The greedy path's probability: each column's top class, sure here, so near 1.
    p = np.exp(4.0) / (np.exp(4.0) + 10 * np.exp(-4.0))
    assert readings[0][1] == pytest.approx(p ** COLUMNS, rel=1e-4)


def test_heads_are_distributions_and_unsure_empty_columns_lower_the_confidence():
    unsure = columns_reading((5, 4))
    unsure[:, BLANK] = -2.0  # every empty column only somewhat more likely blank than a digit
    unsure[5, :] = -4.0
    unsure[5, 4] = 4.0
    heads = ColumnsToHeads()(np.stack([columns_reading((5, 4)), unsure, columns_reading()]))
    length, digits = (keras.ops.convert_to_numpy(heads[k]) for k in ("length", "digits"))
    assert np.allclose(length.sum(-1), 1, atol=1e-5) and np.allclose(digits.sum(-1), 1, atol=1e-5)
    (sure, p_sure), (doubtful, p_doubtful), (empty, _) = decode_batch(length, digits)
    assert sure == doubtful == "4" and empty == ""
    # The doubtful reading's confidence is its greedy path's: its 15 empty columns' blank
    # probabilities times its digit column's.
    column = np.exp(unsure) / np.exp(unsure).sum(-1, keepdims=True)
    assert p_doubtful == pytest.approx(np.prod(column.max(-1)), rel=2e-2)  # float32, 16 columns
    assert p_doubtful < 0.01 < 0.9 < p_sure


def test_the_loss_prefers_the_true_digits():
    logits = np.stack([columns_reading((3, 5), (6, 2)), columns_reading((3, 5), (6, 2)), columns_reading()])
    labels = np.array([[5, 2, BLANK, BLANK, BLANK], [2, 5, BLANK, BLANK, BLANK], [BLANK] * 5])
    loss = keras.ops.convert_to_numpy(ctc_loss(labels, logits))
    assert np.all(np.isfinite(loss))
    assert loss[0] < 1.0 < loss[1]  # "52" is what the columns say, "25" is not
    assert loss[2] < 1.0            # no number: every column blank


def test_the_trunk_comes_from_a_sequence_reader(tmp_path):
    source = build_model((8, 16, 16), dense=16)
    source.save(tmp_path / "reader.keras")
    model = build_ctc_model((8, 16, 16), dense=16)
    assert load_trunk(model, str(tmp_path / "reader.keras")) == 10  # 5 convs and their norms
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    theirs = [layer for layer in source.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(np.array_equal(a.get_weights()[0], b.get_weights()[0]) for a, b in zip(convs, theirs))


def test_train_a_column_reader_export_and_serve(tmp_path):
    run = tmp_path / "run"
    result = train(Config(data=str(FIXTURES / "svhn_train"), out=str(run), epochs=2, steps=2, batch=8,
                          widths=(8, 16, 16), dense=16, sequence_head="ctc", seed=3), verbose=0)
    assert 0.0 <= result["best_val_number_acc"] <= 1.0
    out = tmp_path / "ctc.tflite"
    export(run / "best.keras", out, "dynamic")  # LiteRT's built-in ops only, or the runtime could not load it
    card = model_card(run, out, "dynamic", None)
    assert card["name"].startswith("svhn-sequence-") and "columns" in card["outputs"]
    out.with_suffix(".json").write_text(json.dumps(card))
    model = keras.models.load_model(run / "best.keras", compile=False)
    reader = Reader(out)
    with Image.open(FIXTURES / "svhn_test" / "1.png") as image:
        reading = reader.read(image.convert("RGB"))
        from model.preprocess import to_input

        expected = model.predict(to_input(image)[None], verbose=0)
    assert np.allclose(reading.length_probs, expected["length"][0], atol=2e-2)
    assert np.isclose(sum(reading.length_probs), 1, atol=1e-4)
    assert set(reading.number) <= set("0123456789")


def test_an_unknown_head_or_a_trunk_without_columns_is_refused(tmp_path):
    tiny = dict(data=str(FIXTURES / "svhn_train"), out=str(tmp_path), epochs=1, steps=1, batch=4, widths=(8, 16), dense=8)
    with pytest.raises(ValueError, match="--sequence-head attention"):
        train(Config(sequence_head="attention", **tiny), verbose=0)
    with pytest.raises(ValueError, match="--init-trunk"):
        train(Config(init_trunk="reader.keras", **tiny), verbose=0)
