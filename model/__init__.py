"""SVHN digit-sequence model: data, network, training, export, evaluation and the LiteRT runtime."""
