"""Nearest real faces: is the generator drawing new faces or copying its training photos?

    python -m dcgan nearest --checkpoint runs/faces [--data SOURCE] --out nearest.png

For each of a few generated faces (seeds 0..n-1), the `k` closest training images, found by
streaming the data set's uint8 cache in batches (memory stays bounded on CelebA-sized sets),
in a plain feature space: the image shrunk to at most 32x32 by area averaging, each image's
mean brightness removed (so a copy that is only lighter or darker still matches).  Row r of the
picture: generated face r, then its nearest training images, closest first.  A distance near 0
is a copy; small data sets (a few hundred photos) are where to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan.errors import DcganError

FEATURE_SIDE = 32


def features(images: np.ndarray) -> np.ndarray:
    """(n, d) float32 features of uint8 or [-1, 1] images (n, s, s, 3); see the module docstring."""
    images = np.asarray(images)
    x = images.astype(np.float32) / 127.5 - 1.0 if images.dtype == np.uint8 else images.astype(np.float32)
    n, side = x.shape[0], x.shape[1]
    factor = max(1, side // FEATURE_SIDE)
    if factor > 1:  # area averaging: a cheap, alias-free shrink
        cut = side // factor * factor
        x = x[:, :cut, :cut].reshape(n, cut // factor, factor, cut // factor, factor, 3).mean((2, 4))
    x = x.reshape(n, -1)
    return x - x.mean(axis=1, keepdims=True)


@dataclass
class Neighbours:
    """For each generated face: the indices of its nearest training images and their RMS
    feature distances (closest first), with the faces themselves as uint8."""

    generated: np.ndarray  # (n, s, s, 3) uint8
    indices: np.ndarray  # (n, k) int64, into the data set
    distances: np.ndarray  # (n, k) float32
    real: np.ndarray  # (n, k, s, s, 3) uint8


def nearest_real(generated: np.ndarray, images, k: int = 4, batch: int = 1024) -> Neighbours:
    """The `k` nearest images of the image set `images` (`.count`, `.read(indices)`, uint8) to
    each of `generated` (uint8), reading `batch` images at a time."""
    if images.count < 1:
        raise DcganError("the data set holds no images to compare with")
    k = min(k, images.count)
    queries = features(generated)
    best_d = np.full((len(queries), 0), np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for start in range(0, images.count, batch):
        index = np.arange(start, min(start + batch, images.count))
        block = features(images.read(index))
        # squared distances via |q|^2 - 2 q.b + |b|^2, in float64 for exact near-copies
        d = ((queries.astype(np.float64) ** 2).sum(1)[:, None]
             - 2 * queries.astype(np.float64) @ block.T.astype(np.float64)
             + (block.astype(np.float64) ** 2).sum(1)[None, :])
        all_d = np.concatenate([best_d, np.maximum(d, 0).astype(np.float32)], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(index, d.shape)], axis=1)
        keep = np.argsort(all_d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(all_d, keep, 1), np.take_along_axis(all_i, keep, 1)
    distances = np.sqrt(best_d / queries.shape[1])
    real = images.read(best_i.reshape(-1)).reshape(*best_i.shape, *generated.shape[1:])
    return Neighbours(np.asarray(generated), best_i, distances, real)


def nearest_faces(checkpoint: str | Path, data: str | None = None, n: int = 8, k: int = 4,
                  out: str | Path = "nearest.png", ema: bool = True, best: bool = False) -> Neighbours:
    """Generate `n` faces (seeds 0..n-1) from a run's generator, find each one's `k` nearest
    images in `data` (default: the run's own training data) and save the rows as a grid at `out`."""
    from dcgan.config import Config
    from dcgan.data.pipeline import open_images
    from dcgan.outputs.sampling import generate_images
    from dcgan.outputs.images import save_grid, to_uint8
    from dcgan.outputs.folder import RunPaths
    from dcgan.outputs.sampling import load_generator, seed_latents

    if n < 1 or k < 1:
        raise DcganError(f"--n {n} / --k {k}: both must be at least 1")
    if Path(out).suffix.lower() != ".png":
        raise DcganError(f"--out {out}: must be a .png file")
    generator = load_generator(checkpoint, ema=ema, best=best)
    size = int(generator.output_shape[1])
    config_path = RunPaths(checkpoint).config
    if config_path.is_file():  # the run's own crop, split and cache settings
        images = open_images(Config.from_json(config_path).replace(data=data) if data
                             else Config.from_json(config_path))
    elif data is None:
        raise DcganError(f"{checkpoint}: a .keras file alone does not say what it was trained on; "
                         "add --data SOURCE")
    else:  # the default settings at the generator's size
        images = open_images(Config(image_size=size, data=data))  # only its data fields matter
    generated = to_uint8(generate_images(generator, seed_latents(range(n), int(generator.input_shape[-1]))))
    found = nearest_real(generated, images, k)
    rows = np.concatenate([generated[:, None], found.real], axis=1)
    save_grid(out, rows.reshape(-1, *generated.shape[1:]), columns=k + 1)
    return found
