"""Training data as a tf.data pipeline of float32 batches in [-1, 1].

Sources: `demo` (the built-in procedural faces, no download) or a folder of
images (searched recursively; centre square crop, then resize).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dcgan.config import Config
from dcgan.demo_faces import demo_faces
from dcgan.errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
DEMO_DATA_SEED = 0  # the demo data set is the same whatever the training seed


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image files under `folder`, recursively, sorted; hidden files and non-images skipped."""
    root = Path(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(str(Path(dirpath) / name))
    return found


def load_real_images(config: Config, n: int | None = None) -> np.ndarray:
    """The first `n` training images as uint8 (n, size, size, 3), in data-set order."""
    if config.data == "demo":
        count = config.demo_images if n is None else min(n, config.demo_images)
        return demo_faces(count, config.image_size, DEMO_DATA_SEED)
    files = _image_files(config.data)
    if n is not None:
        files = files[:n]
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(files).map(_decoder(config.image_size))
    return np.stack([x.numpy() for x in ds.ignore_errors()]) if files else np.zeros(
        (0, config.image_size, config.image_size, 3), np.uint8)


def make_dataset(config: Config, shuffle_seed: int | None = None):
    """Return (dataset, image_count): shuffled batches of float32 images in [-1, 1].

    Batches have exactly `config.batch_size` images (the remainder is dropped),
    so every training step sees the same shape.
    """
    import tensorflow as tf

    seed = config.seed if shuffle_seed is None else shuffle_seed
    if config.data == "demo":
        images = demo_faces(config.demo_images, config.image_size, DEMO_DATA_SEED)
        count = len(images)
        ds = tf.data.Dataset.from_tensor_slices(images)
    else:
        files = _image_files(config.data)
        count = len(files)
        ds = (tf.data.Dataset.from_tensor_slices(files)
              .map(_decoder(config.image_size), num_parallel_calls=tf.data.AUTOTUNE)
              .ignore_errors(log_warning=True)
              .cache())
    if count < config.batch_size:
        raise DataError(f"{config.data}: {count} image(s), fewer than batch_size="
                        f"{config.batch_size}; add images or lower --batch-size")
    ds = (ds.shuffle(min(count, 20_000), seed=seed, reshuffle_each_iteration=True)
          .batch(config.batch_size, drop_remainder=True)
          .map(lambda x: tf.cast(x, tf.float32) / 127.5 - 1.0, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))
    return ds, count


def _image_files(source: str) -> list[str]:
    path = Path(source)
    if not path.exists():
        raise DataError(f"{source}: no such file or folder; give --data demo or a folder of images")
    if not path.is_dir():
        raise DataError(f"{source}: not a folder; give --data demo or a folder of images")
    files = list_images(path)
    if not files:
        raise DataError(f"{source}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _decoder(size: int):
    """A tf function: file path -> uint8 (size, size, 3), centre square crop, never squashed."""
    import tensorflow as tf

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(h, w)
        image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2, side, side)
        image = tf.image.resize(image, (size, size), method="area", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    return decode
