"""Moving through a trained generator's latent space: what the notebook's explorer and the web
page (dcgan.apps.serve) both draw from.

A face is chosen by a seed (its latent is `seed_latents([seed])`, as `generate --seeds` draws
it), optionally walked towards a second seed (slerp, `t` from 0 to 1), pushed along the
latent's main directions (`offsets`, in standard deviations) and pulled towards the average
face by truncation (`psi` < 1 scales the latent towards 0).  The directions: for a latent of at
most 32 dimensions, the dimensions themselves (seed128's sliders); for a larger one (dcgan64's
100), the directions that change the picture most: the principal directions of the
generator's response (the largest left singular vectors of its Jacobian at a few latents).
Where the run has named attribute directions (RUN/directions.npz: python -m dcgan
directions), those are the sliders instead: Smiling, Bangs, ...

A face can also start from a latent of one's own instead of a seed's (`starts`: name ->
latent, such as `python -m dcgan project` finds for a photo).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from dcgan.errors import DcganError

MAX_AXIS_DIRECTIONS = 32  # latents up to this size get one slider per dimension


def latent_directions(generator, count: int, seed: int = 0, points: int = 4) -> np.ndarray:
    """(count, latent_dim) unit directions; see the module docstring."""
    from dcgan.outputs.sampling import generate_images, latents_for

    latent_dim = int(generator.input_shape[-1])
    count = min(count, latent_dim)
    if latent_dim <= MAX_AXIS_DIRECTIONS:
        return np.eye(latent_dim, dtype=np.float32)[:count]
    step = 0.5  # finite differences: one forward pass per dimension, batched
    rows = []
    for base in latents_for(points, latent_dim, seed):
        probes = np.concatenate([base[None], base[None] + step * np.eye(latent_dim, dtype=np.float32)])
        out = generate_images(generator, probes).reshape(len(probes), -1)
        rows.append((out[1:] - out[0]) / step)  # (latent_dim, pixels)
    jacobian = np.concatenate(rows, axis=1)
    directions, _, _ = np.linalg.svd(jacobian.astype(np.float64), full_matrices=False)
    return np.ascontiguousarray(directions[:, :count].T, dtype=np.float32)


class FaceExplorer:
    """Faces of one run (or one `.keras` generator) for seeds, walks, slider offsets and
    truncation.  Generators are loaded on first use and reloaded when their file changes (a
    run still training keeps improving what is shown); a run with no generator yet gives a
    CheckpointError naming what is missing, and the explorer keeps working once one appears."""

    def __init__(self, checkpoint: str | Path, directions: int = 32, starts: dict | None = None):
        from dcgan.editing.directions import load_directions
        from dcgan.outputs.sampling import local_spec

        self.checkpoint = local_spec(checkpoint)  # a URL or a released name: downloaded once
        self.direction_count = directions
        self.named = load_directions(self.checkpoint, required=False)
        self.starts = {str(k): np.asarray(v, np.float32).reshape(-1) for k, v in (starts or {}).items()}
        self._loaded: dict[tuple[bool, bool], tuple[float, object, np.ndarray]] = {}
        self._lock = threading.Lock()  # one generator call at a time (web server threads)

    def generator(self, ema: bool = True, best: bool = False):
        """(generator, its directions), loaded again if its file changed since last time."""
        from dcgan.outputs.sampling import generator_file, load_generator

        path = generator_file(self.checkpoint, ema, best)
        stamp = os.stat(path).st_mtime_ns
        cached = self._loaded.get((ema, best))
        if cached is None or cached[0] != stamp:
            generator = load_generator(path)
            latent_dim = int(generator.input_shape[-1])
            if self.named is not None and self.named.vectors.shape[1] == latent_dim:
                directions = self.named.vectors[:self.direction_count]
            else:
                directions = latent_directions(generator, self.direction_count)
            cached = (stamp, generator, directions)
            self._loaded[(ema, best)] = cached
        return cached[1], cached[2]

    def latent(self, seed: int, to: int | None = None, t: float = 0.0, offsets=None,
               psi: float = 1.0, ema: bool = True, best: bool = False,
               start: str | None = None) -> np.ndarray:
        """The (1, latent_dim) latent for these choices (see the module docstring); `start`:
        one of `starts` instead of the seed's latent."""
        from dcgan.outputs.sampling import seed_latents, slerp

        for name, value in (("seed", seed), ("to", to)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 0):
                raise DcganError(f"{name} {value!r}: a seed is a whole number from 0")
        if not 0 <= t <= 1 or not 0 <= psi <= 2:
            raise DcganError(f"t={t}, psi={psi}: t goes from 0 to 1, truncation psi from 0 to 2")
        generator, directions = self.generator(ema, best)
        latent_dim = int(generator.input_shape[-1])
        z = seed_latents([seed], latent_dim)[0]
        if start is not None:
            if start not in self.starts:
                raise DcganError(f"start {start!r}: not one of {', '.join(self.starts) or 'none given'}")
            z = self.starts[start]
            if len(z) != latent_dim:
                raise DcganError(f"start {start!r}: a latent of {len(z)} numbers; this generator "
                                 f"takes {latent_dim}")
        if to is not None:
            z = slerp(z, seed_latents([to], latent_dim)[0], np.array([t]))[0]
        if offsets is not None:
            offsets = np.asarray(offsets, np.float32).reshape(-1)
            if len(offsets) > len(directions):
                raise DcganError(f"{len(offsets)} slider offsets for {len(directions)} directions")
            z = z + offsets @ directions[:len(offsets)]
        return (psi * z)[None].astype(np.float32)

    def face(self, seed: int, **choices) -> np.ndarray:
        """One face as uint8 (size, size, 3)."""
        from dcgan.outputs.sampling import generate_images
        from dcgan.outputs.images import to_uint8

        ema, best = choices.get("ema", True), choices.get("best", False)
        with self._lock:
            z = self.latent(seed, **choices)
            generator, _ = self.generator(ema, best)
            return to_uint8(generate_images(generator, z))[0]

    def face_png(self, seed: int, **choices) -> bytes:
        from dcgan.outputs.images import png_bytes

        return png_bytes(self.face(seed, **choices))

    def info(self, ema: bool = True, best: bool = False) -> dict:
        with self._lock:
            generator, directions = self.generator(ema, best)
        latent_dim = int(generator.input_shape[-1])
        if self.named is not None and self.named.vectors.shape[1] == latent_dim:
            kind, names = "named attribute directions", self.named.names[:len(directions)]
        elif latent_dim <= MAX_AXIS_DIRECTIONS:
            kind, names = "dimensions", [f"z{i}" for i in range(len(directions))]
        else:
            kind, names = "principal directions", [f"dir {i}" for i in range(len(directions))]
        return {"latent_dim": latent_dim, "size": int(generator.output_shape[1]),
                "directions": len(directions), "direction_kind": kind, "names": names,
                "starts": list(self.starts)}
