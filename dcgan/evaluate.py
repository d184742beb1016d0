"""Scoring generators: real and generated samples, metrics, the real-vs-real floor, logs."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np

from dcgan.config import Config
from dcgan.data import DEMO_DATA_SEED, open_image_cache
from dcgan.demo_faces import demo_faces
from dcgan.errors import DataError
from dcgan.gan import generate_images, latents_for
from dcgan.images import to_uint8
from dcgan.metrics import evaluate_images

EVAL_LATENT_SEED = 424_242  # evaluation latents differ from training and sample latents
log = logging.getLogger("dcgan.eval")


def real_sets(config: Config, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Two disjoint random sets of `n` real images (the second for the floor; None if too few)."""
    if config.data == "demo":
        images = demo_faces(max(2 * n, config.demo_images), config.image_size, DEMO_DATA_SEED)
    else:
        cache = open_image_cache(config)
        order = np.random.default_rng(seed).permutation(cache.count)[:2 * n]
        images = cache.read(np.sort(order))
    if len(images) < n:
        raise DataError(f"{config.data}: {len(images)} usable images, fewer than --n {n}")
    images = images[np.random.default_rng(seed).permutation(len(images))]
    return images[:n], (images[n:2 * n] if len(images) >= 2 * n else None)


def fake_set(generator: keras.Model, n: int, seed: int = EVAL_LATENT_SEED) -> np.ndarray:
    latents = latents_for(n, int(generator.input_shape[-1]), seed)
    return to_uint8(generate_images(generator, latents))


def score(generator: keras.Model, real: np.ndarray, floor: np.ndarray | None, metrics=("swd",),
          inception_weights: str | None = "imagenet") -> dict:
    started = time.perf_counter()
    results = evaluate_images(real, fake_set(generator, len(real)), metrics=metrics, floor=floor,
                              inception_weights=inception_weights)
    results["seconds"] = round(time.perf_counter() - started, 2)
    return results


def append_jsonl(path: str | Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def summary(results: dict) -> str:
    parts = []
    if "swd" in results:
        floor = results.get("swd_floor", {}).get("swd_x1e3_avg")
        parts.append(f"SWDx1e3 {results['swd']['swd_x1e3_avg']:.2f}"
                     + (f" (real-vs-real {floor:.2f})" if floor is not None else ""))
    for key in ("fid", "kid"):
        if key in results:
            value = results[key][0] if key == "kid" else results[key]
            floor = results.get(f"{key}_floor")
            floor = floor[0] if isinstance(floor, (list, tuple)) else floor
            parts.append(f"{key.upper()} {value:.4g}" + (f" (real-vs-real {floor:.4g})" if floor is not None else ""))
    return ", ".join(parts) + f" on {results['n_fake']} images"


class PeriodicEval(keras.callbacks.Callback):
    """Every `every` epochs, score the sampling (EMA) generator; log to metrics.jsonl."""

    def __init__(self, config: Config, every: int, n: int, path: str | Path, metrics=("swd",)):
        super().__init__()
        self.config, self.every, self.n, self.path, self.metrics = config, every, n, Path(path), metrics
        self.real = self.floor = None

    def on_train_begin(self, logs=None):
        self.real, self.floor = real_sets(self.config, self.n)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        results = score(self.model.sampling_generator, self.real, self.floor, self.metrics)
        append_jsonl(self.path, {"epoch": epoch + 1, **results})
        log.info("epoch %d: %s", epoch + 1, summary(results))
