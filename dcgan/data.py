"""Training data: an image set (`count`, `size`, `read(indices)`) and the tf.data pipeline.

An image set is either the built-in procedural faces (`data="demo"`, drawn in
memory) or any source `dcgan.sources` understands (folder, archive, glob,
CelebA layouts), decoded once into the file cache (`dcgan.cache`).  Training
and evaluation read both the same way.
"""

from __future__ import annotations

import numpy as np

from dcgan.cache import open_cache
from dcgan.config import Config
from dcgan.demo_faces import DemoImages
from dcgan.errors import DataError
from dcgan.sources import celeba_crop, open_source

DEMO_DATA_SEED = 0  # the demo data set is the same whatever the training seed


def resolve_crop(config: Config, is_celeba: bool) -> int:
    """The crop in pixels (0 = the short side): `auto` picks CelebA's face crop for CelebA."""
    if config.crop >= 0:
        return config.crop
    return celeba_crop(config.image_size) if is_celeba else 0


def open_images(config: Config, at_least: int = 0, progress: bool | None = None):
    """The image set for `config.data`: the demo faces (at least `at_least` of them, for
    evaluation sets larger than the training set), or the decoded-image cache (built on
    first use)."""
    if config.data == "demo":
        return DemoImages(max(config.demo_images, at_least), config.image_size, DEMO_DATA_SEED)
    source = open_source(config.data, config.split)
    return open_cache(source, config.image_size, resolve_crop(config, source.is_celeba),
                      config.cache_dir or None, progress=progress,
                      min_side=config.resolved_min_image_side())


def load_real_images(config: Config, n: int | None = None) -> np.ndarray:
    """The first `n` training images as uint8 (n, size, size, 3), in data-set order."""
    images = open_images(config)
    return images.read(np.arange(images.count if n is None else min(n, images.count)))


def epoch_index_batches(count: int, batch_size: int, seed: int, first_epoch: int = 0):
    """Endless batches of shuffled indices, epoch after epoch, starting at `first_epoch`.

    Epoch e's order is a stateless permutation of (seed, e), so a run resumed at
    epoch e sees exactly the batches an uninterrupted run would have.
    """
    import tensorflow as tf  # lazy: seconds to import, and only training needs it

    last = tf.constant(count - 1, tf.int64)

    def one_epoch(epoch):
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        return (tf.data.Dataset.range(count)
                .map(lambda i: tf.random.experimental.index_shuffle(i, key, last))
                .batch(batch_size, drop_remainder=True))

    return tf.data.Dataset.range(first_epoch, 2**62).flat_map(one_epoch)


def make_dataset(config: Config, first_epoch: int = 0, images=None):
    """Return (dataset, image_count): endless shuffled batches of float32 images in [-1, 1].

    Batches have exactly `config.batch_size` images (each epoch's remainder is
    dropped), so every training step sees the same shape; epoch e's order
    depends only on (config.seed, e).  `images`: the image set, if already open.
    """
    images = images if images is not None else open_images(config)
    if images.count < config.batch_size:
        raise DataError(f"{config.data}: {images.count} usable image(s), fewer than batch_size="
                        f"{config.batch_size}; add images or lower --batch-size")
    return batches(images, config.batch_size, config.seed, first_epoch), images.count


def batches(images, batch_size: int, seed: int, first_epoch: int = 0):
    """Endless tf.data batches of float32 images in [-1, 1] from an image set, epoch by epoch."""
    import tensorflow as tf  # lazy: seconds to import, and only training needs it

    shape = (batch_size, images.size, images.size, 3)

    def read(indices):
        batch = tf.numpy_function(images.read, [indices], tf.uint8, stateful=False)
        batch.set_shape(shape)
        return tf.cast(batch, tf.float32) / 127.5 - 1.0

    return (epoch_index_batches(images.count, batch_size, seed, first_epoch)
            .map(read, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
