"""Image-quality metrics.  SWD follows Karras et al. 2018 (ProGAN) and needs no weights.

`sliced_wasserstein(a, b)` compares two sets of uint8 images (n, h, w, 3):
1. a Laplacian pyramid per image, one level per resolution down to 16x16
   (5x5 binomial blur with mirror padding; the last level is the 16x16 low-pass);
2. 128 random 7x7x3 neighbourhoods per image and level (147-d descriptors);
3. descriptors normalised per colour channel, separately for each set;
4. 4 repeats x 128 random unit directions: project, sort, mean |difference|.
Reported x1e3 per level (finest first) and averaged, as in the paper.
"""

from __future__ import annotations

import numpy as np

METRICS = ("swd", "fid", "kid")
FID_NETWORKS = ("fid", "keras")  # dcgan.evaluation.inception: the standard FID Inception, Keras' InceptionV3
_BINOMIAL = np.array([1, 4, 6, 4, 1], np.float64) / 16.0


def _blur(images: np.ndarray) -> np.ndarray:
    """Separable 5x5 binomial blur with mirror padding; images (n, h, w, c) float."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    rows = sum(_BINOMIAL[i] * padded[:, i:i + images.shape[1]] for i in range(5))
    return sum(_BINOMIAL[i] * rows[:, :, i:i + images.shape[2]] for i in range(5))


def _upsample(images: np.ndarray) -> np.ndarray:
    n, h, w, c = images.shape
    out = np.zeros((n, 2 * h, 2 * w, c), images.dtype)
    out[:, ::2, ::2] = images
    return _blur(out) * 4.0


def laplacian_pyramid(images: np.ndarray, min_size: int = 16) -> list[np.ndarray]:
    """Levels from full resolution down to `min_size` (the last is the low-pass itself)."""
    levels = []
    current = np.asarray(images, np.float64)
    while current.shape[1] > min_size:
        smaller = _blur(current)[:, ::2, ::2]
        levels.append(current - _upsample(smaller))
        current = smaller
    levels.append(current)
    return levels


def _descriptors(level: np.ndarray, per_image: int, rng: np.random.Generator, size: int = 7):
    n, h, w, c = level.shape
    ys = rng.integers(0, h - size + 1, (n, per_image))
    xs = rng.integers(0, w - size + 1, (n, per_image))
    offsets = np.arange(size)
    rows = (ys[..., None] + offsets)[..., :, None]          # (n, k, 7, 1)
    cols = (xs[..., None] + offsets)[..., None, :]          # (n, k, 1, 7)
    patches = level[np.arange(n)[:, None, None, None], rows, cols]  # (n, k, 7, 7, c)
    return patches.reshape(n * per_image, size * size * c)


def _normalise(descriptors: np.ndarray, channels: int = 3) -> np.ndarray:
    d = descriptors.reshape(len(descriptors), -1, channels)
    d = (d - d.mean(axis=(0, 1))) / (d.std(axis=(0, 1)) + 1e-8)
    return d.reshape(len(descriptors), -1)


def _sliced_distance(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                     directions: int, repeats: int) -> float:
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], directions))
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        pa, pb = np.sort(a @ dirs, axis=0), np.sort(b @ dirs, axis=0)
        results.append(np.abs(pa - pb).mean())
    return float(np.mean(results))


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, seed: int = 0, patches_per_image: int = 128,
                       directions: int = 128, repeats: int = 4) -> dict:
    """SWD x1e3 between image sets `a` and `b` (uint8, same size, >= 16 px): per level and average."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape[1:] != b.shape[1:] or a.ndim != 4 or a.shape[1] < 16:
        raise ValueError(f"SWD needs two sets of equal-size images >= 16 px, got {a.shape}, {b.shape}")
    if len(a) != len(b):
        raise ValueError(f"SWD compares sets of equal size, got {len(a)} and {len(b)}")
    per_level = []
    for i, (level_a, level_b) in enumerate(zip(laplacian_pyramid(a), laplacian_pyramid(b))):
        # Both sets draw neighbourhoods at the same positions: identical sets score exactly 0.
        da = _normalise(_descriptors(level_a, patches_per_image, np.random.default_rng([seed, i])))
        db = _normalise(_descriptors(level_b, patches_per_image, np.random.default_rng([seed, i])))
        rng = np.random.default_rng([seed, i, 1])
        per_level.append(1e3 * _sliced_distance(da, db, rng, directions, repeats))
    resolutions = [a.shape[1] >> i for i in range(len(per_level))]
    return {"swd_x1e3": {str(r): round(v, 3) for r, v in zip(resolutions, per_level)},
            "swd_x1e3_avg": round(float(np.mean(per_level)), 3), "n": len(a)}


def real_floor(images: np.ndarray, metric=sliced_wasserstein, seed: int = 0) -> dict:
    """The metric between two disjoint halves of a real set: the best a generator can hope for."""
    images = np.asarray(images)
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(images) // 2
    return metric(images[order[:half]], images[order[half:2 * half]], seed=seed)


# --------------------------------------------------------------- FID and KID
# The feature networks (the standard FID Inception, Keras' InceptionV3) are in dcgan.evaluation.inception.


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2), in float64.

    Tr((S_a S_b)^1/2) is computed as the sum of square roots of the eigenvalues of the
    symmetric matrix S_a^1/2 S_b S_a^1/2 (same spectrum), which needs no scipy and stays
    real and stable.  FID values compare only at equal sample counts (the estimate is biased
    by 1/n).
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(s_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_a @ s_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace_root)


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 10,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets: (mean, std)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        score = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())
        scores.append(score)
    return float(np.mean(scores)), float(np.std(scores))


# ------------------------------------------------------------------- diversity
def mean_pairwise_distance(images: np.ndarray, size: int = 16, seed: int = 0,
                           pairs: int = 4096) -> float:
    """How different the images of a set are from each other: the mean distance between
    random pairs of their `size`x`size` grey thumbnails (pixels in [0, 1], RMS over pixels).
    A collapsed generator scores far below its real images; compare the two."""
    images = np.asarray(images, np.float32) / 255.0
    grey = images.mean(axis=3)
    factor = grey.shape[1] // size
    if factor > 1:  # box-filter down to `size` pixels a side
        grey = grey[:, :size * factor, :size * factor].reshape(
            len(grey), size, factor, size, factor).mean(axis=(2, 4))
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(grey), (2, pairs))
    keep = a != b
    return float(np.sqrt(((grey[a[keep]] - grey[b[keep]]) ** 2).mean(axis=(1, 2))).mean())


def checkerboard_energy(images: np.ndarray) -> float:
    """The share of an image set's spectral energy (grey, each image's mean removed) at the
    highest frequency a pixel grid has, a period of 2 pixels along rows or columns: where
    the checkerboard of transposed convolutions lives.  Photographs have little there."""
    grey = np.asarray(images, np.float64).mean(axis=3)
    grey -= grey.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(grey)) ** 2
    h, w = grey.shape[1:]
    nyquist = power[:, h // 2, :].sum() + power[:, :, w // 2].sum() - power[:, h // 2, w // 2].sum()
    return float(nyquist / max(power.sum(), 1e-12))
