"""A reader with one digit classifier shared by every position: columns read with CTC.

model/net.py gives each of the five positions its own classifier over the flattened
features, so a 3 in second place is learnt apart from a 3 in first place, and third and
fourth places see few examples of anything: costly with 2,000 labelled photos. Here the
last blocks pool only vertically, leaving 16 columns across the number; one classifier
reads each column as a digit or "nothing here", and CTC (Graves et al. 2006) trains it
from the digit string alone, without saying which column holds which digit.

The network also turns its columns into model/net.py's two heads (greedy CTC decoding, in
the graph), so serving, evaluation and export take it as they take the other reader.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from model.data import MAX_DIGITS
from model.decode import BLANK
from model.net import WIDTHS, conv_bn
from model.preprocess import INPUT_SIZE

COLUMNS = INPUT_SIZE // 4  # two 2x2 pools, then vertical ones only


@keras.saving.register_keras_serializable(package="svhn")
class ColumnsToHeads(layers.Layer):
    """Column logits (B, T, 11; class 10 the CTC blank) -> {"length", "digits"} as model/net.py's.

    Greedy decoding: each column's likeliest class, repeats merged, blanks dropped. The k-th
    digit kept gives slot k its column's probabilities; slots past the end are certain blanks,
    and the length head is certain of the count. Fixed-size ops only (argmax, cumsum,
    one_hot, einsum), as LiteRT needs.
    """

    def call(self, logits):
        probs = ops.softmax(logits, axis=-1)
        # argmax of an integer mask: Keras's float argmax adds a sign-bit test LiteRT cannot run.
        top = ops.max(probs, axis=-1)
        best = ops.argmax(ops.cast(ops.equal(probs, top[..., None]), "int32"), axis=-1)
        previous = ops.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=BLANK)
        # As floats: the mask is counted and multiplied below.
        keep = ops.cast(ops.not_equal(best, BLANK), "float32") * ops.cast(ops.not_equal(best, previous), "float32")
        slot = ops.cast(ops.cumsum(keep, axis=1) - 1.0, "int32")
        slots = ops.one_hot(slot, MAX_DIGITS) * keep[..., None]  # (B, T, MAX_DIGITS); a 6th digit has no slot
        digits = ops.einsum("btk,btc->bkc", slots, probs)
        empty = 1.0 - ops.sum(slots, axis=1)  # (B, MAX_DIGITS): 1 past the number's end
        digits = digits + empty[..., None] * ops.one_hot(ops.full((1, MAX_DIGITS), BLANK, "int32"), BLANK + 1)
        # The columns read as empty may be wrong too: their probability scales the first digit's
        # classes (its blank takes the rest), so decode()'s confidence is the whole greedy path's.
        # Not the length's: a count under half sure would then decode as no number, and on
        # validation most such readings were right.
        rest = ops.exp(ops.sum((1.0 - keep) * ops.log(top), axis=1))
        first = ops.one_hot(ops.zeros_like(rest, "int32"), MAX_DIGITS)  # (B, MAX_DIGITS)
        read = digits[..., :BLANK] * (1.0 + (rest[:, None] - 1.0) * first)[..., None]
        digits = ops.concatenate([read, 1.0 - ops.sum(read, axis=-1, keepdims=True)], axis=-1)
        count = ops.minimum(ops.sum(keep, axis=1), float(MAX_DIGITS))
        length = ops.one_hot(ops.cast(count, "int32"), MAX_DIGITS + 1)
        return {"length": length, "digits": digits}


def build_ctc_model(widths: tuple[int, ...] = WIDTHS, dense: int = 256, dropout: float = 0.3) -> keras.Model:
    """The conv trunk of model/net.py (same layers, so its weights carry over), pooled to 16 columns."""
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="image")
    x = conv_bn(inputs, widths[0])
    x = layers.MaxPooling2D()(x)
    for i, channels in enumerate(widths[1:]):
        x = conv_bn(x, channels)
        x = conv_bn(x, channels)
        x = layers.MaxPooling2D((2, 2) if i == 0 else (2, 1))(x)
    height = x.shape[1]
    # (B, H, T, C) -> (B, T, H * C): each column keeps where in its height a feature sits.
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((COLUMNS, height * widths[-1]))(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    # Neighbouring columns: whether this column starts a digit or continues the last one.
    x = layers.Conv1D(dense, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(dropout)(x)
    columns = layers.Dense(BLANK + 1, name="columns")(x)
    heads = ColumnsToHeads(name="heads")(columns)
    return keras.Model(inputs, {"columns": columns, **heads}, name="svhn_ctc")


def ctc_loss(digits, logits):
    """digits: (B, MAX_DIGITS) labels padded with BLANK, as model.train's batches give them."""
    digits = ops.cast(digits, "int32")
    lengths = ops.sum(ops.cast(ops.not_equal(digits, BLANK), "int32"), axis=1)
    steps = ops.full((ops.shape(logits)[0],), ops.shape(logits)[1], "int32")
    return ops.ctc_loss(digits, logits, lengths, steps, mask_index=BLANK)


def load_trunk(model: keras.Model, checkpoint: str) -> int:
    """Copy a model/net.py reader's conv layers and their batch norms into `model`, in order.
    -> how many layers were copied."""
    source = keras.models.load_model(checkpoint, compile=False)
    kinds = (layers.Conv2D, layers.BatchNormalization)
    trunk = 2 * sum(isinstance(layer, layers.Conv2D) for layer in model.layers)  # each conv and its norm
    theirs = [layer for layer in source.layers if isinstance(layer, kinds)][:trunk]
    ours = [layer for layer in model.layers if isinstance(layer, kinds)][:trunk]
    copied = 0
    for mine, other in zip(ours, theirs):
        if type(mine) is not type(other) or any(a.shape != b.shape for a, b in zip(mine.get_weights(), other.get_weights())):
            break
        mine.set_weights(other.get_weights())
        copied += 1
    return copied
