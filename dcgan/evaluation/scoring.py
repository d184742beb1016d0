"""Scoring generators: real and generated sample sets, metrics beside their real-vs-real
floor, and the `evaluate` command (scoring during training: dcgan.evaluation.best)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np

from dcgan.config import Config
from dcgan.data.pipeline import open_images
from dcgan.errors import DataError, DcganError
from dcgan.outputs.sampling import generate_images, latents_for
from dcgan.outputs.images import to_uint8
from dcgan.io import atomic_write_text
from dcgan.evaluation.metrics import (METRICS, frechet_distance, kernel_inception_distance,
                           sliced_wasserstein)
from dcgan.outputs.folder import RunPaths
from dcgan.outputs.sampling import load_generator

EVAL_LATENT_SEED = 424_242  # evaluation latents differ from training and sample latents
log = logging.getLogger("dcgan.eval")


def evaluate_images(real: np.ndarray, fake: np.ndarray, metrics=("swd",), floor: np.ndarray | None = None,
                    fid_network: str = "fid", inception_weights: str | None = None, seed: int = 0) -> dict:
    """Score uint8 `fake` against `real` with each metric; with `floor` (a second, disjoint real
    set of the same size) also the real-vs-real value of each metric.

    FID and KID use `fid_network` (see dcgan.evaluation.inception): "fid", the standard network published
    FIDs use, or "keras"; the results name it (`fid_network`) and say whether the values
    compare with published ones (`fid_comparable`).
    """
    results: dict = {"n_real": len(real), "n_fake": len(fake)}
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(sorted(unknown))}: choose {', '.join(METRICS)}")
    if "swd" in metrics:
        results["swd"] = sliced_wasserstein(real, fake, seed=seed)
        if floor is not None:
            results["swd_floor"] = sliced_wasserstein(real, floor, seed=seed)
    if {"fid", "kid"} & set(metrics):
        from dcgan.evaluation.inception import feature_network  # the network only when FID/KID are asked for

        network = feature_network(fid_network, inception_weights)
        real_f, fake_f = network.features(real, label="real"), network.features(fake, label="generated")
        floor_f = network.features(floor, label="second real set") if floor is not None else None
        results["fid_network"], results["fid_comparable"] = network.name, network.comparable
        if "fid" in metrics:
            results["fid"] = round(frechet_distance(real_f, fake_f), 4)
            if floor_f is not None:
                results["fid_floor"] = round(frechet_distance(real_f, floor_f), 4)
        if "kid" in metrics:
            results["kid"] = kernel_inception_distance(real_f, fake_f, seed=seed)
            if floor_f is not None:
                results["kid_floor"] = kernel_inception_distance(real_f, floor_f, seed=seed)
    return results


def real_sets(config: Config, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Two disjoint random sets of `n` real images (the second for the floor; None if too few)."""
    images = open_images(config, at_least=2 * n)
    if images.count < n:
        raise DataError(f"{config.data}: {images.count} usable images, fewer than --n {n}")
    order = np.random.default_rng(seed).permutation(images.count)[:2 * n]
    chosen = images.read(np.sort(order))
    chosen = chosen[np.random.default_rng(seed).permutation(len(chosen))]
    return chosen[:n], (chosen[n:2 * n] if len(chosen) >= 2 * n else None)


def fake_set(generator: keras.Model, n: int, seed: int = EVAL_LATENT_SEED) -> np.ndarray:
    latents = latents_for(n, int(generator.input_shape[-1]), seed)
    return to_uint8(generate_images(generator, latents))


def score(generator: keras.Model, real: np.ndarray, floor: np.ndarray | None, metrics=("swd",),
          fid_network: str = "fid", inception_weights: str | None = None) -> dict:
    started = time.perf_counter()
    results = evaluate_images(real, fake_set(generator, len(real)), metrics=metrics, floor=floor,
                              fid_network=fid_network, inception_weights=inception_weights)
    results["seconds"] = round(time.perf_counter() - started, 2)
    return results


def evaluate(checkpoint: str | Path, data: str | None = None, metrics=("swd",), n: int = 1024,
             ema: bool = True, out: str | Path | None = None, fid_network: str = "fid",
             inception_weights: str | None = None, best: bool = False) -> dict:
    """Score a saved generator against real images; write JSON (and the run's metrics.jsonl).

    FID/KID use `fid_network` ("fid": the standard network, weights downloaded once or
    `inception_weights`, a local copy; "keras": not comparable with published values).
    """
    generator = load_generator(checkpoint, ema=ema, best=best)
    run = RunPaths(checkpoint) if Path(checkpoint).is_dir() else None
    if run is not None and not run.config.exists():
        run = None
    if data is None and run is None:
        raise DcganError(f"{checkpoint}: not a run folder; say which images to compare with: --data")
    config = Config.from_json(run.config) if run else Config.from_preset("seed128")
    size = int(generator.output_shape[1])
    config = config.replace(data=data or config.data, image_size=size)
    real, floor = real_sets(config, n)
    results = {"checkpoint": str(checkpoint), "data": config.data,
               "generator": ("best " if best else "") + ("ema" if ema else "raw"),
               **score(generator, real, floor, tuple(metrics), fid_network, inception_weights)}
    if out is None and run is not None:
        out = run.eval
    if out is not None:
        atomic_write_text(out, json.dumps(results, indent=1) + "\n")
    if run is not None:
        append_jsonl(run.metrics, results)
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
    line = ", ".join(parts) + f" on {results['n_fake']} images"
    if "fid_network" in results:  # every FID/KID number says which network scored it
        line += f"; FID/KID by {results['fid_network']}"
    return line


def score_value(results: dict, metric: str) -> tuple[float, float | None]:
    """(the score, its real-vs-real floor or None) of `metric` in `score`'s results."""
    if metric == "swd":
        floor = results.get("swd_floor", {}).get("swd_x1e3_avg")
        return float(results["swd"]["swd_x1e3_avg"]), floor
    return float(results[metric]), results.get(f"{metric}_floor")
