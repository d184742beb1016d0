"""Training data as a tf.data pipeline of float32 batches in [-1, 1].

Sources: `demo` (the built-in procedural faces, drawn in memory) or any image
source `dcgan.sources` understands (folder, archive, glob, CelebA layouts),
decoded once into a file cache (`dcgan.cache`) and read from there.
"""

from __future__ import annotations

import numpy as np

from dcgan.config import Config
from dcgan.demo_faces import demo_faces
from dcgan.errors import DataError
from dcgan.sources import celeba_crop, open_source

DEMO_DATA_SEED = 0  # the demo data set is the same whatever the training seed


def resolve_crop(config: Config, is_celeba: bool) -> int:
    """The crop in pixels (0 = the short side): `auto` picks CelebA's face crop for CelebA."""
    if config.crop >= 0:
        return config.crop
    return celeba_crop(config.image_size) if is_celeba else 0


def open_image_cache(config: Config, progress: bool | None = None):
    """The decoded-image cache for `config.data` (built on first use)."""
    from dcgan.cache import open_cache

    source = open_source(config.data, config.split)
    return open_cache(source, config.image_size, resolve_crop(config, source.is_celeba),
                      config.cache_dir or None, progress=progress)


def load_real_images(config: Config, n: int | None = None) -> np.ndarray:
    """The first `n` training images as uint8 (n, size, size, 3), in data-set order."""
    if config.data == "demo":
        count = config.demo_images if n is None else min(n, config.demo_images)
        return demo_faces(count, config.image_size, DEMO_DATA_SEED)
    cache = open_image_cache(config)
    return cache.read(np.arange(cache.count if n is None else min(n, cache.count)))


def epoch_index_batches(count: int, batch_size: int, seed: int, first_epoch: int = 0):
    """Endless batches of shuffled indices, epoch after epoch, starting at `first_epoch`.

    Epoch e's order is a stateless permutation of (seed, e), so a run resumed at
    epoch e sees exactly the batches an uninterrupted run would have.
    """
    import tensorflow as tf

    last = tf.constant(count - 1, tf.int64)

    def one_epoch(epoch):
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        return (tf.data.Dataset.range(count)
                .map(lambda i: tf.random.experimental.index_shuffle(i, key, last))
                .batch(batch_size, drop_remainder=True))

    return tf.data.Dataset.range(first_epoch, 2**62).flat_map(one_epoch)


def make_dataset(config: Config, first_epoch: int = 0):
    """Return (dataset, image_count): endless shuffled batches of float32 images in [-1, 1].

    Batches have exactly `config.batch_size` images (each epoch's remainder is
    dropped), so every training step sees the same shape; epoch e's order
    depends only on (config.seed, e).
    """
    import tensorflow as tf

    if config.data == "demo":
        images = demo_faces(config.demo_images, config.image_size, DEMO_DATA_SEED)
        count = len(images)
        _check_count(config, count)
        table = tf.constant(images)
        read = lambda indices: tf.gather(table, indices)  # noqa: E731
    else:
        cache = open_image_cache(config)
        count = cache.count
        _check_count(config, count)
        read = cache.tf_read(config.batch_size)
    dataset = (epoch_index_batches(count, config.batch_size, config.seed, first_epoch)
               .map(lambda i: tf.cast(read(i), tf.float32) / 127.5 - 1.0,
                    num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    return dataset, count


def _check_count(config: Config, count: int) -> None:
    if count < config.batch_size:
        raise DataError(f"{config.data}: {count} usable image(s), fewer than batch_size="
                        f"{config.batch_size}; add images or lower --batch-size")
