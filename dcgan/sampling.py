"""Drawing from a trained generator: load it, latents for seeds, grids, latent walks."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from dcgan.errors import CheckpointError, DcganError
from dcgan.gan import generate_images, latents_for
from dcgan.images import save_gif, save_grid, to_uint8
from dcgan.run import RunPaths


def generator_file(checkpoint: str | Path, ema: bool = True, best: bool = False) -> Path:
    """The `.keras` file `load_generator` loads for these arguments (a released name or URL is
    downloaded first); CheckpointError, one line, when there is none."""
    from dcgan.pretrained import fetch_generator, is_remote

    if is_remote(checkpoint):  # a released name or a URL: downloaded once, sha256-checked
        if best:
            raise CheckpointError(f"{checkpoint}: --best needs a run folder, not a single generator")
        checkpoint = fetch_generator(str(checkpoint))
    path = Path(checkpoint)
    if best:
        path = RunPaths(path).best
        if not path.is_dir():
            raise CheckpointError(f"{checkpoint}: no best generator kept there (train with "
                                  "--best-every N, or leave out --best)")
    names = (["generator_ema"] if ema else []) + ["generator"]
    # A .keras file itself, a checkpoints/ folder, or a run folder.
    candidates = [path] + [place for name in names
                           for place in (path / f"{name}.keras", RunPaths(path).export(name))]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        if not path.exists():
            raise CheckpointError(f"{checkpoint}: no such run folder or .keras file")
        raise CheckpointError(f"{checkpoint}: no generator yet (a run saves "
                              "checkpoints/generator.keras after its first epoch)")
    return found


def load_generator(checkpoint: str | Path, ema: bool = True, best: bool = False) -> keras.Model:
    """Load a generator from a run folder, its `checkpoints/` folder, a `.keras` file, or a
    released name or http(s) URL of one (dcgan.pretrained).

    In a folder, the EMA generator (`generator_ema.keras`) is preferred unless `ema=False`;
    `best`: the best-scoring one kept during training (`checkpoints/best/`), not the last.
    """
    found = generator_file(checkpoint, ema, best)
    try:
        return keras.saving.load_model(found, compile=False, safe_mode=True)
    except Exception as e:  # a corrupt or foreign file: one line, not a traceback
        raise CheckpointError(f"{found}: not a loadable Keras model ({type(e).__name__}: {e})") from None


def load_pretrained(spec: str, sha256: str | None = None):
    """(generator, local path) for a released name, a URL or a local `.keras` file."""
    from dcgan.pretrained import RELEASED, fetch_generator, is_remote

    if not is_remote(spec) and not Path(spec).exists():
        raise CheckpointError(f"{spec}: no such file, nor a released generator "
                              f"({', '.join(RELEASED) or 'none released yet'}) or an http(s) URL")
    path = fetch_generator(spec, sha256, progress=True) if is_remote(spec) else Path(spec)
    return load_generator(path), path


def seed_latents(seeds, latent_dim: int) -> np.ndarray:
    """One latent per seed: image k of `--seeds` depends only on seed k."""
    if not len(seeds):
        return np.zeros((0, latent_dim), np.float32)
    return np.concatenate([latents_for(1, latent_dim, int(s)) for s in seeds])


def generate(checkpoint: str | Path, n: int = 64, seed: int = 0, out: str | Path = "faces.png",
             columns: int | None = None, seeds=None, ema: bool = True,
             best: bool = False) -> np.ndarray:
    """Generate images from a saved generator, save them as a grid at `out`, return them.

    With `seeds`, one image per seed (reproducible one by one); else `n` images from `seed`.
    """
    generator = load_generator(checkpoint, ema=ema, best=best)
    latent_dim = int(generator.input_shape[-1])
    latents = seed_latents(seeds, latent_dim) if seeds is not None else latents_for(n, latent_dim, seed)
    images = generate_images(generator, latents)
    save_grid(out, images, columns)
    return images


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latents a and b (keeps Gaussian latents' typical norm)."""
    omega = np.arccos(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1, 1))
    t = np.asarray(t, np.float64)[:, None]
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def interpolate(checkpoint: str | Path, seed_from: int, seed_to: int, steps: int = 8,
                out: str | Path = "walk.png", frame_ms: int = 120, ema: bool = True,
                best: bool = False) -> np.ndarray:
    """Walk the latent space from seed `seed_from`'s face to `seed_to`'s; a PNG strip or a GIF."""
    if steps < 2:
        raise DcganError(f"--steps {steps}: need at least 2")
    generator = load_generator(checkpoint, ema=ema, best=best)
    a, b = seed_latents([seed_from, seed_to], int(generator.input_shape[-1]))
    images = generate_images(generator, slerp(a, b, np.linspace(0, 1, steps)))
    if str(out).lower().endswith(".gif"):
        frames = list(to_uint8(images))
        save_gif(out, frames + frames[-2:0:-1], frame_ms)  # there and back again
    else:
        save_grid(out, images, columns=steps)
    return images
