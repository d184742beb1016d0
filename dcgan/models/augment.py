"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout.

Applied to real and generated images before every discriminator call (also in
the generator's step), so the discriminator never sees an un-augmented image
and cannot simply memorise a small training set, while gradients still flow
back to the generator.  Written in keras.ops; images are NHWC in [-1, 1].
The magnitudes are the paper's: brightness +-0.5, saturation x[0, 2],
contrast x[0.5, 1.5], translation up to 1/8 of the side, cutout of 1/2 the side.
"""

from __future__ import annotations

import keras
from keras import ops

from dcgan.backend import replica_share
from dcgan.config import DIFFAUGMENT_POLICIES, comma_list


def parse_policy(text: str) -> tuple[str, ...]:
    """'color,translation' -> ('color', 'translation'); '' -> (); ValueError for unknown names."""
    parts = comma_list(text)
    unknown = [p for p in parts if p not in DIFFAUGMENT_POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)}: "
                         f"use {', '.join(DIFFAUGMENT_POLICIES)}")
    return parts


def diff_augment(images, policy, seed, strength=None):
    """Augment a batch with each transform named in `policy` (see DIFFAUGMENT_POLICIES).

    `strength` (a scalar p in [0, 1], e.g. the adaptive one): each transform is applied
    to each image with probability p; None applies every transform to every image."""
    for name in policy:
        augmented = TRANSFORMS[name](images, seed)
        if strength is not None:
            chosen = _uniform(images, seed) < ops.cast(strength, "float32")
            augmented = ops.where(chosen, augmented, images)
        images = augmented
    return images


# Draws go through replica_share: on N TensorFlow replicas each draws for the global batch
# and keeps its slice, so the images are augmented as on one device.
def _uniform(images, seed, low=0.0, high=1.0):
    return replica_share(lambda shape: keras.random.uniform(shape, low, high, seed=seed),
                         ops.shape(images)[0], 1, 1, 1)


def _randint(batch, low, high, seed, *rest):
    return replica_share(lambda shape: keras.random.randint(shape, low, high, seed=seed),
                         batch, *rest)


def _color(x, seed):
    x = x + _uniform(x, seed, -0.5, 0.5)
    mean = ops.mean(x, axis=3, keepdims=True)
    x = (x - mean) * _uniform(x, seed, 0.0, 2.0) + mean
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * _uniform(x, seed, 0.5, 1.5) + mean


def _shift_matrices(batch, size, shift):
    """One (size, size) matrix per image that moves rows by `shift[b]`, filling with zeros."""
    rows = ops.arange(size)[None, :, None]
    cols = ops.arange(size)[None, None, :]
    return ops.cast(ops.equal(cols, rows - ops.reshape(shift, (batch, 1, 1))), "float32")


def _translation(x, seed, ratio=0.125):
    batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
    limit_h, limit_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = _randint(batch, -limit_h, limit_h + 1, seed)
    dx = _randint(batch, -limit_w, limit_w + 1, seed)
    x = ops.einsum("bij,bjwc->biwc", _shift_matrices(batch, height, dy), x)
    return ops.einsum("bij,bhjc->bhic", _shift_matrices(batch, width, dx), x)


def _cutout(x, seed, ratio=0.5):
    batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]
    size_h, size_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    cy = _randint(batch, 0, height + (1 - size_h % 2), seed, 1, 1)
    cx = _randint(batch, 0, width + (1 - size_w % 2), seed, 1, 1)
    rows = ops.arange(height)[None, :, None]
    cols = ops.arange(width)[None, None, :]
    inside = ops.logical_and(
        ops.logical_and(rows >= cy - size_h // 2, rows < cy - size_h // 2 + size_h),
        ops.logical_and(cols >= cx - size_w // 2, cols < cx - size_w // 2 + size_w))
    return x * ops.cast(ops.logical_not(inside), x.dtype)[..., None]


TRANSFORMS = {"color": _color, "translation": _translation, "cutout": _cutout}
assert set(TRANSFORMS) == set(DIFFAUGMENT_POLICIES), "one transform per policy name in dcgan.config"
