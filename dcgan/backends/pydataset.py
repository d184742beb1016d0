"""The batch stream as a `keras.utils.PyDataset`: how JAX and PyTorch are fed (no TensorFlow)."""

from __future__ import annotations

import keras


class ImageBatches(keras.utils.PyDataset):
    """Endless batches `reader(b)`, read ahead by worker threads."""

    def __init__(self, reader, workers: int = 2):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
        self.reader = reader

    @property
    def num_batches(self):
        return None  # endless: fit() takes steps_per_epoch batches per epoch

    def __getitem__(self, b):
        return self.reader(b)


def feed(reader, shape):
    """The batches `reader(0), reader(1), ...` (each of `shape`) as fit() reads them."""
    return ImageBatches(reader)
