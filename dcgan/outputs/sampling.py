"""Drawing from a trained generator: any checkpoint spec to a generator, latents for seeds,
generating faces, grids and latent walks.

A checkpoint spec is a run folder, its `checkpoints/` folder, a `.keras` file, a released name
(`RELEASED`) or an https URL of a `.keras` generator with its sha256:

    python -m dcgan generate --checkpoint https://.../generator.keras#sha256=HEX
    python -m dcgan train --preset faces64 --init-from https://.../generator.keras#sha256=HEX

A URL is downloaded once into the cache (`$DCGAN_CACHE/pretrained`, else
~/.cache/dcgan/pretrained), checked against its sha256 (after `#sha256=`, pip's convention, or
given separately) and loaded with `safe_mode=True`, so no code in it runs.  A URL needs https
and a sha256: a file that is run through Keras' deserializer must be the one its publisher
meant.  `file://` URLs and local paths are read as they are.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import keras
import numpy as np
from keras import ops

from dcgan.errors import CheckpointError, DataError, DcganError
from dcgan.outputs.folder import RunPaths
from dcgan.outputs.images import save_gif, save_grid, to_uint8

# name -> (https URL, sha256) of generators this project has released.  None yet: a generator
# trained on CelebA needs a GPU run that has not been made (docs: "Pretrained generators").
RELEASED: dict[str, tuple[str, str]] = {}


def is_remote(spec) -> bool:
    """Whether `spec` names a download (a URL or a released name) rather than a local path."""
    return str(spec).startswith(("http://", "https://")) or str(spec) in RELEASED


def pretrained_root() -> Path:
    from dcgan.data.cache import default_cache_root

    return default_cache_root() / "pretrained"


def fetch_generator(spec: str, sha256: str | None = None, progress: bool = False) -> Path:
    """The local copy of a released name or an https URL (downloaded on first use)."""
    from dcgan.data.download import fetch

    if spec in RELEASED:
        url, sha256 = RELEASED[spec]
    else:
        url, _, fragment = str(spec).partition("#")
        if fragment.startswith("sha256="):
            sha256 = sha256 or fragment.removeprefix("sha256=")
    if not url.startswith("https://"):
        raise CheckpointError(f"{url}: a generator is downloaded over https only (plain http can be "
                              "altered on the way); use an https URL or download the file yourself")
    if not sha256:
        raise CheckpointError(f"{url}: no sha256 given; add #sha256=HEX to the URL (the publisher's "
                              "checksum), so that what loads is the file that was published")
    name = PurePosixPath(urlparse(url).path).name
    if not name.endswith(".keras"):
        raise CheckpointError(f"{url}: expected the URL of a .keras generator file")
    # one folder per URL: two releases may both be called generator.keras
    folder = pretrained_root() / hashlib.sha256(url.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return fetch(url, folder, sha256=sha256, progress=progress)
    except DataError as e:
        raise CheckpointError(str(e)) from None


def local_spec(spec, progress: bool = False) -> Path:
    """`spec` as a local path: a URL or a released name is downloaded first; a `file://` URL is
    its path.  CheckpointError, one line, when nothing is there."""
    text = str(spec)
    if text.startswith("file://"):
        path = Path(unquote(urlparse(text).path))
    elif is_remote(text):
        path = fetch_generator(text, progress=progress)
    else:
        path = Path(spec)
    if not path.exists():
        known = ", ".join(RELEASED) or "none released yet"
        raise CheckpointError(f"{spec}: no such run folder or .keras file, nor a released generator "
                              f"({known}) or an https URL")
    return path


def generator_file(checkpoint, ema: bool = True, best: bool = False) -> Path:
    """The `.keras` file `load_generator` loads for these arguments; CheckpointError, one line,
    when there is none."""
    if best and is_remote(checkpoint):
        raise CheckpointError(f"{checkpoint}: --best needs a run folder, not a single generator")
    path = local_spec(checkpoint)
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
        raise CheckpointError(f"{checkpoint}: no generator yet (a run saves "
                              "checkpoints/generator.keras after its first epoch)")
    return found


def load_generator(checkpoint, ema: bool = True, best: bool = False) -> keras.Model:
    """The generator of any checkpoint spec (see the module docstring), loaded with
    `safe_mode=True`.

    In a folder, the EMA generator (`generator_ema.keras`) is preferred unless `ema=False`;
    `best`: the best-scoring one kept during training (`checkpoints/best/`), not the last.
    """
    from dcgan.models import layers  # noqa: F401 - registers the custom layers the file names

    found = generator_file(checkpoint, ema, best)
    try:
        return keras.saving.load_model(found, compile=False, safe_mode=True)
    except Exception as e:  # a corrupt or foreign file: one line, not a traceback
        raise CheckpointError(f"{found}: not a loadable Keras model ({type(e).__name__}: {e})") from None


def load_pretrained(spec: str, sha256: str | None = None):
    """(generator, local path) for a released name, an https URL or a local `.keras` file."""
    if sha256 and str(spec).startswith("https://") and "#" not in str(spec):
        spec = f"{spec}#sha256={sha256}"
    path = local_spec(spec, progress=True)
    return load_generator(path), path


def latents_for(n, latent_dim, seed=0):
    """`n` standard-normal latents drawn from numpy's generator for `seed` (backend-independent)."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


def seed_latents(seeds, latent_dim: int) -> np.ndarray:
    """One latent per seed: image k of `--seeds` depends only on seed k."""
    if not len(seeds):
        return np.zeros((0, latent_dim), np.float32)
    return np.concatenate([latents_for(1, latent_dim, int(s)) for s in seeds])


def generate_images(generator, latents, batch_size=64):
    """Run `generator` in inference mode over `latents` in batches; float32 numpy in [-1, 1]."""
    latents = np.asarray(latents, np.float32)
    outputs = [ops.convert_to_numpy(generator(latents[i:i + batch_size], training=False))
               for i in range(0, len(latents), batch_size)]
    if not outputs:
        size = generator.output_shape[1:]
        return np.zeros((0, *size), np.float32)
    return np.concatenate(outputs).astype(np.float32)


def _generator_of(source, ema: bool, best: bool):
    if isinstance(source, keras.Model):  # a DCGAN draws with its EMA generator where it has one
        return getattr(source, "sampling_generator", source)
    return load_generator(source, ema=ema, best=best)


def generate(source, n: int = 64, seed: int = 0, out: str | Path | None = None,
             columns: int | None = None, seeds=None, ema: bool = True,
             best: bool = False, shift=None) -> np.ndarray:
    """Faces from `source` (a DCGAN, a generator model, or any checkpoint spec) as float32
    numpy in [-1, 1]; with `out`, also saved there as a grid.

    With `seeds`, one image per seed (reproducible one by one); else `n` images from `seed`:
    the same seed always gives the same latents (`latents_for`).  `shift`: a latent offset
    added to every latent (an attribute edit: dcgan.editing.directions.edit_vector).
    """
    generator = _generator_of(source, ema, best)
    latent_dim = int(generator.input_shape[-1])
    latents = seed_latents(seeds, latent_dim) if seeds is not None else latents_for(n, latent_dim, seed)
    if shift is not None:
        shift = np.asarray(shift, np.float32).reshape(-1)
        if len(shift) != latent_dim:
            raise CheckpointError(f"an edit of {len(shift)} latent numbers for a generator of "
                                  f"{latent_dim}: the directions belong to another run")
        latents = latents + shift
    images = generate_images(generator, latents)
    if out is not None:
        save_grid(out, images, columns)
    return images


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latents a and b (keeps Gaussian latents' typical norm)."""
    omega = np.arccos(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1, 1))
    t = np.asarray(t, np.float64)[:, None]
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def interpolate(checkpoint, seed_from: int, seed_to: int, steps: int = 8,
                out: str | Path = "walk.png", frame_ms: int = 120, ema: bool = True,
                best: bool = False) -> np.ndarray:
    """Walk the latent space from seed `seed_from`'s face to `seed_to`'s; a PNG strip or a GIF."""
    if steps < 2:
        raise DcganError(f"--steps {steps}: need at least 2")
    generator = _generator_of(checkpoint, ema, best)
    a, b = seed_latents([seed_from, seed_to], int(generator.input_shape[-1]))
    images = generate_images(generator, slerp(a, b, np.linspace(0, 1, steps)))
    if str(out).lower().endswith(".gif"):
        frames = list(to_uint8(images))
        save_gif(out, frames + frames[-2:0:-1], frame_ms)  # there and back again
    else:
        save_grid(out, images, columns=steps)
    return images
