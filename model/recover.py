"""Read a bundled reader's weights back out of its .tflite into a Keras run folder.

    python -m model.recover --tflite model/svhn.tflite --out runs/recovered [--data data/svhn/train]

A run's Keras checkpoint lives under runs/, outside git; the bundled file is what survives.
The converter folded each batch norm into the layer before it and stored the weights as int8
with a scale per output channel, so this builds the same network (model/net.py, one member or
several averaged as model/ensemble.py does), gives each conv or dense layer the dequantised
weights, and sets each batch norm to pass its input through plus the folded bias. The result
computes what the .tflite computes: model.export can freeze it again (in float32, or with int8
weights as bundled), and training can go on from it (`model.train --init`) or, for an average
of several, from one member saved alone (`model.get_layer("member_1").save(...)`).

Before training goes on from it, give it `--data` (the labelled photos it learnt from): a
pass-through batch norm is exact at inference, but in training a batch norm divides by its
batch's own statistics, so the first step would compute another function (a run continued from
the bare recovery read 77% of the validation crops after one epoch, from 88%). With --data each
batch norm gets its input's mean and variance on the training photos, and a scale and shift
that undo them: the same function at inference, and nearly the same in training. A reader that
learnt from handwriting too (the drawing reader) also wants --mnist: its share of the inputs are
then MNIST train drawings, as its batches were.

    python -m model.recover --tflite model/drawing.tflite --out runs/drawing2 --data data/svhn/train --mnist data/mnist
"""
from __future__ import annotations

import argparse
import functools
import json
import re
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from model.cli import said_plainly
from model.data import held_out_by

MEMBER = re.compile(r"member_(\d+)")
STATISTICS_PHOTOS = 512  # training photos, under the crop protocol, whose activations set the batch norms


def layer_weights(tflite: Path) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """-> per member, in the order the network runs them: (kernel, bias) of each conv and dense op.

    Kernels come back float and in Keras's layout: (h, w, in, out) for a conv, (in, out) for a dense.
    """
    interpreter = Interpreter(model_path=str(tflite))
    details = {d["index"]: d for d in interpreter.get_tensor_details()}

    def value(index: int) -> np.ndarray:
        tensor = interpreter.get_tensor(index)
        q = details[index]["quantization_parameters"]
        if tensor.dtype == np.float32:
            return tensor
        # Symmetric per-channel int8 (zero point 0) along the quantised dimension, the output channel.
        shape = [1] * tensor.ndim
        shape[q["quantized_dimension"]] = -1
        return tensor.astype(np.float32) * q["scales"].reshape(shape)

    members: dict[int, list] = {}
    # The interpreter's list of ops is the one view of the graph that LiteRT's Python API gives.
    for op in interpreter._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        _, kernel, bias = op["inputs"]
        found = MEMBER.search(details[kernel]["name"])
        w = value(kernel)
        w = w.transpose(1, 2, 3, 0) if op["op_name"] == "CONV_2D" else w.T
        # A bias of zeros (as a head's starts) is left out of the file: index -1.
        b = value(bias) if bias >= 0 else np.zeros(w.shape[-1], np.float32)
        members.setdefault(int(found.group(1)) if found else 0, []).append((w, b))
    return members


def load_member(model, weights: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Give model/net.py's network the folded weights: conv/dense kernels, and batch norms that add the bias."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # The heads (length, digits) come last in both orders, but the converter may run them either way round.
    by_width = {w.shape[-1]: (w, b) for w, b in weights[len(norms):]}
    if len(weights) != len(convs) or len(by_width) != len(convs) - len(norms):
        raise ValueError(f"{len(weights)} weighted ops in the file, {len(convs)} layers in the network")
    for layer, norm, (w, b) in zip(convs, norms, weights):
        layer.set_weights([w])
        # gamma 1, beta the folded bias, mean 0, variance 1 - epsilon: x -> x + bias.
        norm.set_weights([np.ones_like(b), b, np.zeros_like(b), np.full_like(b, 1 - norm.epsilon)])
    for layer in convs[len(norms):]:
        layer.set_weights(list(by_width[layer.units]))


def restore_statistics(model, x: np.ndarray) -> None:
    """Give each pass-through batch norm (x -> x + bias) the mean and variance of its input on x,
    with gamma and beta that undo them: at inference it still computes x + bias, and in training,
    on batches like x, nearly that."""
    import keras

    for norm in (layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)):
        inputs = keras.Model(model.inputs, norm.input).predict(x, batch_size=256, verbose=0)
        axes = tuple(range(inputs.ndim - 1))
        mean, variance = inputs.mean(axes), inputs.var(axes)
        bias = norm.get_weights()[1]
        norm.set_weights([np.sqrt(variance + norm.epsilon), bias + mean, mean, variance])


@functools.lru_cache(maxsize=None)  # the members of an averaged reader share one split: load its photos once
def statistics_inputs(data: str, fraction: float, seed: int, mnist: str | None = None,
                      handwriting: float = 0.0) -> np.ndarray:
    """Crops of the photos a run trained on (its held-out ones left out), as the reader sees them;
    with `mnist`, MNIST train drawings cut the same way take the run's `handwriting` share. The
    drawing reader learnt mostly from drawings: with photos' statistics alone, batches of drawings
    made it read 73.6% of MNIST val drawings in training mode, against 86.8% at inference."""
    from model.fitting import crop_inputs, training_photos
    from model.preprocess import protocol_crop, to_input

    drawn = round(STATISTICS_PHOTOS * handwriting) if mnist else 0
    _, train_samples, _, images = training_photos(data, fraction, seed)
    x = crop_inputs(train_samples[:STATISTICS_PHOTOS - drawn], images)
    if drawn:
        from model.handwriting import Handwriting, load_mnist

        writer, rng = Handwriting(*load_mnist(mnist, "train")), np.random.default_rng(seed)
        drawings = [writer.compose(rng) for _ in range(drawn)]
        x = np.concatenate([x, np.stack([to_input(protocol_crop(canvas, boxes)) for canvas, _, boxes in drawings])])
    return x


def recover(tflite: Path, out: Path, data: str | None = None, mnist: str | None = None) -> None:
    from model.ensemble import average
    from model.net import build_model

    card = json.loads(tflite.with_suffix(".json").read_text())
    training = card["training"]
    records = training.get("members", [training])
    members = layer_weights(tflite)
    if len(members) != len(records):
        raise ValueError(f"{len(members)} networks in {tflite}, {len(records)} in its card")
    models = []
    for i, record in enumerate(records):
        model = build_model(tuple(record["widths"]), record["dense"])
        load_member(model, members[i])
        if data:
            handwriting = record.get("handwriting_fraction", 0.0) if record.get("mnist") else 0.0
            restore_statistics(model, statistics_inputs(data, *held_out_by(record)[1:], mnist, handwriting))
        models.append(model)
    model = average(models) if len(models) > 1 else models[0]
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "best.keras")
    # The run's record as model.export wants it: the card keeps the training record less its results.
    record = dict(training, recovered_from=str(tflite), recovered_quantization=card["quantization"],
                  best_val_number_acc=card["validation"]["number_accuracy"],
                  best_epoch=card["validation"]["best_epoch"], confidence_threshold=card["confidence_threshold"],
                  batch_norm_statistics_from=data, batch_norm_drawings_from=mnist if data else None)
    (out / "train.json").write_text(json.dumps(record, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tflite", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", help="the labelled photos it learnt from: set its batch norms' statistics, "
                                       "so that training can go on from it")
    parser.add_argument("--mnist", help="with --data, for a reader that learnt from handwriting (the drawing "
                                        "reader): MNIST train drawings take its share of the statistics' inputs")
    args = parser.parse_args()
    recover(args.tflite, args.out, args.data, args.mnist)
    print(f"wrote {args.out / 'best.keras'}")


if __name__ == "__main__":
    with said_plainly():  # a wrong folder or file is one line, not a traceback
        main()
