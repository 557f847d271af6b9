"""The sequence network (Goodfellow et al. 2014, "Multi-digit Number Recognition from Street View
Imagery using Deep Convolutional Neural Networks"), sized for a CPU.

A stack of conv blocks reads the 64x64 grey crop; a shared dense layer feeds two heads:
  length: softmax over 0..MAX_DIGITS digits
  digits: for each of MAX_DIGITS positions, softmax over 0-9 plus "no digit here" (class 10)
Written against `keras` alone so it trains on TensorFlow here and on JAX on a GPU machine.
"""
from __future__ import annotations

import keras
from keras import layers

from model.data import MAX_DIGITS
from model.decode import BLANK
from model.preprocess import INPUT_SIZE

WIDTHS = (32, 64, 128, 192)  # channels per block; each block halves the resolution


def conv_bn(x, channels: int):
    x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def build_model(widths: tuple[int, ...] = WIDTHS, dense: int = 256, dropout: float = 0.3) -> keras.Model:
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="image")
    x = conv_bn(inputs, widths[0])
    x = layers.MaxPooling2D()(x)
    for channels in widths[1:]:
        x = conv_bn(x, channels)
        x = conv_bn(x, channels)
        x = layers.MaxPooling2D()(x)
    # Flatten, not global pooling: where a feature sits tells which digit position it is.
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(dropout)(x)
    length = layers.Dense(MAX_DIGITS + 1, activation="softmax", name="length")(x)
    digits = layers.Dense(MAX_DIGITS * (BLANK + 1))(x)
    digits = layers.Reshape((MAX_DIGITS, BLANK + 1))(digits)
    digits = layers.Softmax(name="digits")(digits)
    return keras.Model(inputs, {"length": length, "digits": digits}, name="svhn_sequence")
