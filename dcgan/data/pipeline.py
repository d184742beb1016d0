"""Training data: an image set (`count`, `size`, `read(indices)`) and the batch stream.

An image set is either the built-in procedural faces (`data="demo"`, drawn in
memory) or any source `dcgan.data.sources` understands (folder, archive, glob,
CelebA layouts), decoded once into the file cache (`dcgan.data.cache`).  Training
and evaluation read both the same way.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from dcgan.data.cache import open_cache
from dcgan.config import Config
from dcgan.data.demo_faces import DemoImages
from dcgan.errors import DataError
from dcgan import backend, settings
from dcgan.data.sources import open_source

DEMO_DATA_SEED = 0  # the demo data set is the same whatever the training seed


def open_images(config: Config, at_least: int = 0, progress: bool | None = None):
    """The image set for `config.data`: the demo faces (at least `at_least` of them, for
    evaluation sets larger than the training set), or the decoded-image cache (built on
    first use)."""
    if config.data == "demo":
        return DemoImages(max(config.demo_images, at_least), config.image_size, DEMO_DATA_SEED)
    source = open_source(config.data, config.split)
    return open_cache(source, config.image_size, settings.crop(config, source.is_celeba),
                      config.cache_dir or None, progress=progress,
                      min_side=settings.min_image_side(config))


def load_real_images(config: Config, n: int | None = None) -> np.ndarray:
    """The first `n` training images as uint8 (n, size, size, 3), in data-set order."""
    images = open_images(config)
    return images.read(np.arange(images.count if n is None else min(n, images.count)))


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """Epoch `epoch`'s order of the `count` images: a stateless permutation of (seed, epoch),
    the same on every backend, so a run resumed at epoch e sees exactly the batches an
    uninterrupted run would have."""
    return np.random.default_rng([seed, epoch]).permutation(count)


class BatchReader:
    """Batch `b` of the endless stream that starts at global batch `first_batch` (the
    training steps taken before it): float32 in [-1, 1].

    The data's epochs hold `count // batch_size` batches (the remainder is dropped, so every
    step sees the same shape).  The order is indexed by the global batch, not restarted at
    each training epoch: with a `steps_per_epoch` shorter than the data, a run resumed at any
    step (mid-epoch checkpoints included) reads exactly the batches an uninterrupted one
    would.  `first_epoch` (older callers): the same as `first_batch = first_epoch *
    (count // batch_size)`.  `shard=(i, n)`: read only the i-th of n equal slices of
    each batch (process i of a multi-host run).  Thread-safe: the input pipelines call
    it from workers.
    """

    def __init__(self, images, batch_size: int, seed: int, first_epoch: int = 0,
                 shard: tuple[int, int] = (0, 1), first_batch: int | None = None):
        self.images, self.batch_size, self.seed = images, batch_size, seed
        self.shard_index, shards = shard
        self.shard_size = batch_size // shards
        self.per_epoch = images.count // batch_size
        self.first_batch = first_epoch * self.per_epoch if first_batch is None else int(first_batch)
        self._orders: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def indices(self, b: int) -> np.ndarray:
        epoch, position = divmod(self.first_batch + int(b), self.per_epoch)
        with self._lock:
            order = self._orders.get(epoch)
            if order is None:
                order = epoch_order(self.images.count, self.seed, epoch)
                self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}
                self._orders[epoch] = order
        start = position * self.batch_size + self.shard_index * self.shard_size
        return order[start:start + self.shard_size]

    def __call__(self, b) -> np.ndarray:
        batch = self.images.read(self.indices(b))
        return batch.astype(np.float32) / 127.5 - 1.0


def check_enough(config: Config, images) -> None:
    """DataError, one line, when the image set holds fewer images than one batch."""
    if images.count < config.batch_size:
        raise DataError(f"{config.data}: {images.count} usable image(s), fewer than batch_size="
                        f"{config.batch_size}; add images or lower --batch-size")


def make_dataset(config: Config, first_batch: int = 0, images=None,
                 shard: tuple[int, int] = (0, 1)):
    """Return (dataset, image_count): endless shuffled batches of float32 images in [-1, 1].

    Batches have exactly `config.batch_size` images (each epoch's remainder is
    dropped), so every training step sees the same shape; the data's epoch e's order
    depends only on (config.seed, e).  `first_batch`: the global batch the stream starts
    at (the steps a resumed run has taken); `images`: the image set, if already open;
    `shard`: this process's slice of each batch (see BatchReader).
    On TensorFlow the batches come from tf.data; on JAX and PyTorch from a
    `keras.utils.PyDataset`, so those runtimes need no TensorFlow.
    """
    images = images if images is not None else open_images(config)
    check_enough(config, images)
    return batches(images, config.batch_size, config.seed, first_batch, shard), images.count


def batches(images, batch_size: int, seed: int, first_batch: int = 0,
            shard: tuple[int, int] = (0, 1)):
    """Endless batches of float32 images in [-1, 1] from an image set, from global batch
    `first_batch` on, as the backend's trainer reads them (dcgan.backends: tf.data on
    TensorFlow, else a PyDataset)."""
    reader = BatchReader(images, batch_size, seed, shard=shard, first_batch=first_batch)
    return backend.feed(reader, (reader.shard_size, images.size, images.size, 3))


IDENTITY_SAMPLES = 16  # images hashed for a data set's identity (evenly spaced)


def data_identity(images) -> str:
    """What a data set *is*, whatever path it came from: its count, image size and a hash
    of the decoded pixels of a few images spread over it.  A run records it in each
    checkpoint, so the same images found elsewhere (a copied folder; Kaggle's mount one
    day, a download folder the next) resume the run instead of being refused."""

    count = int(images.count)
    picks = np.unique(np.linspace(0, count - 1, min(IDENTITY_SAMPLES, count)).astype(np.int64))
    digest = hashlib.sha256(f"{count}\0{images.size}\0".encode())
    digest.update(np.ascontiguousarray(images.read(picks)).tobytes())
    return f"{count}:{digest.hexdigest()[:16]}"
