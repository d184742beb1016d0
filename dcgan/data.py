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


def make_dataset(config: Config, shuffle_seed: int | None = None):
    """Return (dataset, image_count): shuffled batches of float32 images in [-1, 1].

    Batches have exactly `config.batch_size` images (the remainder is dropped),
    so every training step sees the same shape.
    """
    import tensorflow as tf

    seed = config.seed if shuffle_seed is None else shuffle_seed
    if config.data == "demo":
        images = demo_faces(config.demo_images, config.image_size, DEMO_DATA_SEED)
        _check_count(config, len(images))
        dataset = (tf.data.Dataset.from_tensor_slices(images)
                   .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
                   .batch(config.batch_size, drop_remainder=True)
                   .map(lambda x: tf.cast(x, tf.float32) / 127.5 - 1.0,
                        num_parallel_calls=tf.data.AUTOTUNE)
                   .prefetch(tf.data.AUTOTUNE))
        return dataset, len(images)
    cache = open_image_cache(config)
    _check_count(config, cache.count)
    return cache.dataset(config.batch_size, seed), cache.count


def _check_count(config: Config, count: int) -> None:
    if count < config.batch_size:
        raise DataError(f"{config.data}: {count} usable image(s), fewer than batch_size="
                        f"{config.batch_size}; add images or lower --batch-size")
