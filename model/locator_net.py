"""The localiser: a small fully convolutional network that finds house numbers in a whole picture.

It reads the letterboxed picture (model/heatmap.py) down to 1/32 of its size, so a cell can see
a number that fills the picture, then comes back up to 1/8 with skip connections (a small
feature pyramid), where a heat map marks number centres and four more channels give each
centre's offset and the number's size. Written against `keras` alone, like model/net.py.
"""
from __future__ import annotations

import math

import keras
from keras import layers, ops

from model.heatmap import LOCATOR_SIZE

WIDTHS = (16, 32, 48, 64, 96)  # channels at 1/2, 1/4, 1/8, 1/16 and 1/32 of the input
HEAD = 64
PRIOR = 0.05  # the heat head starts out saying "rarely a centre here", so training starts stable


def conv_bn(x, channels: int, stride: int = 1):
    x = layers.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def build_locator(widths: tuple[int, ...] = WIDTHS, head: int = HEAD) -> keras.Model:
    inputs = keras.Input((LOCATOR_SIZE, LOCATOR_SIZE, 1), name="image")
    x = conv_bn(inputs, widths[0], stride=2)
    x = conv_bn(conv_bn(x, widths[1], stride=2), widths[1])
    c3 = conv_bn(conv_bn(x, widths[2], stride=2), widths[2])
    c4 = conv_bn(conv_bn(c3, widths[3], stride=2), widths[3])
    c5 = conv_bn(conv_bn(conv_bn(c4, widths[4], stride=2), widths[4]), widths[4])
    lateral = lambda c: layers.Conv2D(head, 1)(c)  # noqa: E731
    p4 = conv_bn(layers.Add()([layers.UpSampling2D()(lateral(c5)), lateral(c4)]), head)
    p3 = conv_bn(layers.Add()([layers.UpSampling2D()(p4), lateral(c3)]), head)
    bias = -math.log((1 - PRIOR) / PRIOR)
    heat = layers.Conv2D(1, 1, activation="sigmoid", bias_initializer=keras.initializers.Constant(bias))(conv_bn(p3, head))
    box = layers.Conv2D(4, 1)(conv_bn(p3, head))
    outputs = layers.Concatenate(name="locations")([heat, box])
    return keras.Model(inputs, outputs, name="svhn_locator")


def locator_loss(y_true, y_pred):
    """CenterNet's penalty-reduced focal loss on the heat map, plus L1 on offset and size at centres.

    Both are divided by the picture's number of centres (at least one), so a picture with no
    number (a negative) weighs as much as a picture with one.
    """
    target, heat = y_true[..., 0], ops.clip(y_pred[..., 0], 1e-4, 1 - 1e-4)
    centre = ops.cast(target >= 0.999, heat.dtype)
    focal = -(centre * ops.log(heat) * (1 - heat) ** 2
              + (1 - centre) * ops.log(1 - heat) * heat ** 2 * (1 - target) ** 4)
    box = ops.sum(ops.abs(y_true[..., 1:] - y_pred[..., 1:]), axis=-1) * centre
    count = ops.maximum(ops.sum(centre, axis=(1, 2)), 1.0)
    return (ops.sum(focal, axis=(1, 2)) + ops.sum(box, axis=(1, 2))) / count
