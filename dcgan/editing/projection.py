"""A photo into the latent space: the latent whose face is closest to it (StyleGAN2-ADA's
projector, for a DCGAN's z).

The photo is cropped and resized as the run's training images were (`photo_crop`).  The search
starts from the `starts` closest of `candidates` random latents and moves them all at once with
Adam: the learning rate ramps up over the first 5 % of the steps and down (cosine) over the last
25 %, and noise on the latent, fading out over the first three quarters, shakes the search out
of poor local minima early.  The loss is the pixels' mean squared error plus, where the run's
discriminator is at hand, the distance between its features of the two images (each of its
LeakyReLU activations, normalised by the photo's): D has learned what sets faces apart, and it
needs no download.  The FID network's pool features join them (`inception_weight`; by default
where its weights are already in the Keras cache and a GPU runs the search: on a CPU its
299x299 passes take seconds a step).  A light pull towards the latent's typical norm keeps the found latent one
that edits and arithmetic treat like any other.

The distance reported is the RMS pixel error (images in [-1, 1]; `nearest`'s unit); PSNR =
20 log10(2 / distance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dcgan.errors import DataError, DcganError

MAX_PHOTO_PIXELS = 50_000_000  # a larger "photo" is a mistake (or a decompression bomb)
FAR_FACTOR = 2.0  # a photo this many times the run's own images' distance is "not found well"


@dataclass
class ProjectionSettings:
    """The search's knobs (`python -m dcgan project --help` shows them as flags)."""

    steps: int = 500
    starts: int = 4
    candidates: int = 256
    learning_rate: float = 0.1
    noise: float = 0.05  # initial latent noise, in the latent's standard deviations
    pixel_weight: float = 1.0
    feature_weight: float = 0.05
    norm_weight: float = 0.002
    inception_weight: float = -1.0  # -1: auto (see the module docstring)
    frames: int = 24  # snapshots of the search kept for its GIF
    seed: int = 0

    def checked(self) -> "ProjectionSettings":
        for name in ("steps", "starts", "candidates", "frames"):
            if getattr(self, name) < 1:
                raise DcganError(f"--{name} {getattr(self, name)}: must be at least 1")
        for name in ("learning_rate", "noise", "pixel_weight", "feature_weight", "norm_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise DcganError(f"--{name.replace('_', '-')} {value}: must be a number from 0")
        if not (self.inception_weight == -1 or 0 <= self.inception_weight < math.inf):
            raise DcganError(f"--inception-weight {self.inception_weight}: -1 (auto) or a number from 0")
        if self.pixel_weight == 0 and self.feature_weight == 0 and self.inception_weight <= 0:
            raise DcganError("--pixel-weight and --feature-weight are both 0: nothing to match")
        return self


@dataclass
class Projection:
    """What a search found, per target image."""

    latents: np.ndarray  # (n, latent_dim) float32
    images: np.ndarray  # (n, size, size, 3) in [-1, 1]: the latents' faces
    targets: np.ndarray  # (n, size, size, 3) in [-1, 1]
    distances: np.ndarray  # (n,) RMS pixel error
    frames: list = field(default_factory=list)  # (n, size, size, 3) snapshots during the search

    @property
    def psnr(self) -> np.ndarray:
        return 20 * np.log10(2 / np.maximum(self.distances, 1e-8))


def photo_crop(config, photo_side: int) -> int:
    """The centred square (pixels of this photo) the run's training images were cut to
    (dcgan.settings.photo_crop, CelebA told by the run's data)."""
    from dcgan import settings

    return settings.photo_crop(config, photo_side, _is_celeba(config.data))


def _is_celeba(spec: str) -> bool:
    if "celeba" in spec.lower():
        return True
    if spec == "demo" or spec.startswith("hf:") or not Path(spec).exists():
        return False
    from dcgan.data.sources import open_source

    try:
        return open_source(spec).is_celeba
    except DcganError:
        return False


def load_photo(path: str | Path, size: int, config=None, crop: int | None = None) -> np.ndarray:
    """A photo as the generator's images: float32 (size, size, 3) in [-1, 1], centre-cropped
    (`crop` pixels, 0 the short side; default as the run's data was: `photo_crop`) and resized.
    DataError, one line, for a file that is not an image or is smaller than the crop."""
    from PIL import Image, UnidentifiedImageError

    from dcgan.data.decode import decode_one_with_pillow

    path = Path(path)
    try:
        data = path.read_bytes()
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise DataError(f"{path}: no such photo") from None
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not a photo (give each photo with --image)") from None
    except (UnidentifiedImageError, OSError):
        raise DataError(f"{path}: not an image, or a format Pillow cannot read") from None
    if width * height > MAX_PHOTO_PIXELS:
        raise DataError(f"{path}: {width}x{height} px is too large for a face photo; resize it first")
    short = min(width, height)
    if crop is None or crop < 0:
        crop = photo_crop(config, short) if config is not None else short
    crop = crop or short
    if short < crop:
        raise DataError(f"{path}: {width}x{height} px is smaller than the {crop} px square the "
                        "run's images were cut to; use a larger photo or --crop 0 (the whole short side)")
    if crop < size // 2:
        raise DataError(f"{path}: a {crop} px face is too small for this {size}x{size} generator; "
                        f"use a photo with at least {size // 2} px across the face")
    image, _ = decode_one_with_pillow(data, size, crop)
    return image.astype(np.float32) / 127.5 - 1


def feature_layers(discriminator) -> list:
    """The discriminator's LeakyReLU outputs: what its blocks have learned to see."""
    import keras

    return [layer.output for layer in discriminator.layers
            if isinstance(layer, keras.layers.LeakyReLU)]


def _feature_model(discriminator, inception, image_shape):
    """image -> [D's features..., the FID network's pool features] (those given), or None."""
    import keras

    d_features = feature_layers(discriminator) if discriminator is not None else []
    if not d_features and inception is None:
        return None, []
    image = keras.Input(image_shape)
    outputs = list(_as_list(keras.Model(discriminator.input, d_features)(image))) if d_features else []
    if inception is not None:  # it takes pixel values 0-255
        outputs.append(inception(keras.layers.Rescaling(127.5, offset=127.5)(image)))
    return keras.Model(image, outputs), [len(d_features), int(inception is not None)]


def _as_list(outputs):
    return outputs if isinstance(outputs, (list, tuple)) else [outputs]


def _search_model(generator, discriminator, inception=None):
    """latent -> [image, features...] as one Keras model, and the model of the features alone."""
    import keras

    features, counts = _feature_model(discriminator, inception, generator.output_shape[1:])
    if features is None:
        return keras.Model(generator.input, [generator.output]), None, counts
    latent = keras.Input(generator.input_shape[1:])
    image = generator(latent)
    return keras.Model(latent, [image, *_as_list(features(image))]), features, counts


def _loss_fn(settings: ProjectionSettings, counts: list[int], inception_weight: float):
    from keras import ops

    d_count = counts[0] if counts else 0
    weights = [settings.feature_weight / max(1, d_count)] * d_count + (
        [inception_weight] if len(counts) > 1 and counts[1] else [])

    def mean_over_sample(x):
        x = ops.cast(x, "float32")
        return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)

    def loss(outputs, latent, target, *target_features):
        image, *features = _as_list(outputs)  # Keras gives a one-output model's tensor bare
        total = settings.pixel_weight * mean_over_sample(ops.square(ops.subtract(image, target)))
        for weight, mine, theirs in zip(weights, features, target_features, strict=True):
            scale = mean_over_sample(ops.square(theirs)) + 1e-6  # each layer counts alike
            total = total + weight * (
                mean_over_sample(ops.square(ops.subtract(ops.cast(mine, "float32"), theirs))) / scale)
        norm = ops.mean(ops.square(latent), axis=1)
        return total + settings.norm_weight * ops.square(norm - 1.0)

    return loss


def project_images(generator, targets: np.ndarray, discriminator=None,
                   settings: ProjectionSettings | None = None, inception=None) -> Projection:
    """Find, for each of `targets` (float32 (n, size, size, 3) in [-1, 1]), the latent whose
    face is closest (see the module docstring).  `inception`: the FID network's Keras model
    (pixels 0-255 -> pool features), weighted by `settings.inception_weight` (auto: 1)."""
    from keras import ops

    from dcgan import backend
    from dcgan.outputs.sampling import generate_images

    settings = (settings or ProjectionSettings()).checked()
    targets = np.asarray(targets, np.float32)
    n, size = len(targets), int(generator.output_shape[1])
    if targets.ndim != 4 or targets.shape[1:] != (size, size, 3):
        raise DcganError(f"targets of shape {targets.shape}: expected (n, {size}, {size}, 3)")
    latent_dim = int(generator.input_shape[-1])
    rng = np.random.default_rng(settings.seed)
    starts = min(settings.starts, settings.candidates)

    # The starts: the closest of a few random latents to each target (forward passes only).
    pool = rng.standard_normal((settings.candidates, latent_dim)).astype(np.float32)
    faces = generate_images(generator, pool).reshape(len(pool), -1)
    flat = targets.reshape(n, -1)
    errors = (np.square(flat).sum(1)[:, None] - 2 * flat @ faces.T + np.square(faces).sum(1)[None])
    z = pool[np.argsort(errors, axis=1)[:, :starts]].reshape(n * starts, latent_dim)

    model, features, counts = _search_model(
        generator, discriminator if settings.feature_weight > 0 else None, inception)
    repeated = np.repeat(targets, starts, axis=0)
    target_features = [] if features is None else [
        np.asarray(f, np.float32) for f in _numpy_list(features(repeated, training=False))]
    inception_weight = settings.inception_weight if settings.inception_weight >= 0 else 1.0
    step = backend.input_gradients(model, _loss_fn(settings, counts, inception_weight))
    fixed = [ops.convert_to_tensor(t) for t in (repeated, *target_features)]  # on the device once

    m, v = np.zeros_like(z), np.zeros_like(z)
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-8
    frame_every = max(1, settings.steps // settings.frames)
    snapshots = []
    for i in range(settings.steps):
        t = (i + 0.5) / settings.steps
        lr = settings.learning_rate * _ramp(t)
        noise_scale = settings.noise * max(0.0, 1 - t / 0.75) ** 2
        noisy = z + noise_scale * rng.standard_normal(z.shape).astype(np.float32)
        _, grad = step(noisy, noisy, *fixed)
        m = beta_1 * m + (1 - beta_1) * grad
        v = beta_2 * v + (1 - beta_2) * grad * grad
        m_hat, v_hat = m / (1 - beta_1 ** (i + 1)), v / (1 - beta_2 ** (i + 1))
        z = (z - lr * m_hat / (np.sqrt(v_hat) + epsilon)).astype(np.float32)
        if i % frame_every == 0:
            snapshots.append(z.copy())
    final_losses, _ = step(z, z, *fixed)
    best = np.argmin(final_losses.reshape(n, starts), axis=1) + np.arange(n) * starts
    latents = z[best]
    images = generate_images(generator, latents)
    distances = np.sqrt(np.mean(np.square(images - targets).reshape(n, -1), axis=1))
    frames = [generate_images(generator, snapshot[best]) for snapshot in snapshots] + [images]
    return Projection(latents, images, targets, distances, frames)


def _numpy_list(outputs) -> list:
    from keras import ops

    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [ops.convert_to_numpy(o) for o in outputs]


def _ramp(t: float) -> float:
    """StyleGAN2-ADA's learning-rate ramp: up over the first 5 %, cosine down over the last 25 %."""
    down = min(1.0, (1 - t) / 0.25)
    return (0.5 - 0.5 * math.cos(down * math.pi)) * min(1.0, t / 0.05)


def fid_features(settings: ProjectionSettings):
    """The FID network's Keras model for the search, or None: with `inception_weight` > 0
    (downloading its weights once, as `evaluate --metrics fid` does), or auto (-1) where its
    weights are already cached and the search runs on a GPU."""
    from dcgan.evaluation.inception import FID_WEIGHTS_URL, _keras_cache, feature_network

    if settings.inception_weight == 0:
        return None
    if settings.inception_weight < 0:
        from dcgan.hardware import local_accelerator

        cached = (_keras_cache() / Path(FID_WEIGHTS_URL).name).is_file()
        if not cached or local_accelerator().platform != "gpu":
            return None
    return feature_network("fid").model


def reference_images(config, size: int, count: int = 4) -> np.ndarray:
    """`count` of the run's own training images in [-1, 1], to project beside the photos and
    judge their distances by; empty where they cannot be read here (the data set is elsewhere)."""
    from dcgan.data.pipeline import load_real_images

    empty = np.zeros((0, size, size, 3), np.float32)
    if config is None:
        return empty
    try:
        if config.data == "demo":  # the first ones alone, not the whole set drawn first
            from dcgan.data.demo_faces import demo_faces
            from dcgan.data.pipeline import DEMO_DATA_SEED

            real = demo_faces(count, config.image_size, DEMO_DATA_SEED)
        else:
            real = load_real_images(config, count)
    except DcganError:
        return empty
    if len(real) == 0 or real.shape[1] != size:
        return empty
    return real.astype(np.float32) / 127.5 - 1


def project(checkpoint, photos, out: str | Path, settings: ProjectionSettings | None = None,
            crop: int | None = None, ema: bool = True, best: bool = False,
            reference: bool = True) -> dict:
    """Project each photo into `checkpoint`'s latent space; write to `out`, per photo NAME:
    NAME.npy (the latent), NAME.png (the photo beside its reconstruction), NAME.gif (the
    search), and `projection.json` with the distances.  Returns that summary; a photo far
    from anything the run draws (FAR_FACTOR times its own images' distance) is marked so."""
    import json

    from dcgan.io import atomic_write_text
    from dcgan.outputs.images import save_gif, save_png, to_uint8
    from dcgan.outputs.sampling import generator_file, load_generator

    photos = [Path(p) for p in photos]
    if not photos:
        raise DcganError("no photos given (--image PHOTO, once per photo)")
    settings = (settings or ProjectionSettings()).checked()
    generator = load_generator(checkpoint, ema=ema, best=best)
    size = int(generator.output_shape[1])
    config = run_config(generator_file(checkpoint, ema, best))
    targets = np.stack([load_photo(p, size, config, crop) for p in photos])
    discriminator = load_discriminator(generator_file(checkpoint, ema, best)) \
        if settings.feature_weight > 0 else None
    inception = fid_features(settings)
    own = reference_images(config, size) if reference else np.zeros((0, *targets.shape[1:]), np.float32)
    # One search for the photos and the run's own images: one compiled step, one batch.
    found = project_images(generator, np.concatenate([targets, own]), discriminator, settings, inception)
    ref = float(np.median(found.distances[len(targets):])) if len(own) else None

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = _unique_stems(photos)
    results = []
    for i, (photo, name) in enumerate(zip(photos, names, strict=True)):
        np.save(out / f"{name}.npy", found.latents[i])
        save_png(out / f"{name}.png", _side_by_side(found.targets[i], found.images[i]))
        frames = [np.concatenate([to_uint8(found.targets[i:i + 1])[0], to_uint8(f[i:i + 1])[0]], axis=1)
                  for f in found.frames]
        save_gif(out / f"{name}.gif", frames, [80] * (len(frames) - 1) + [1500])
        far = ref is not None and found.distances[i] > FAR_FACTOR * max(ref, 0.02)
        results.append({"photo": str(photo), "name": name, "latent": str(out / f"{name}.npy"),
                        "distance": round(float(found.distances[i]), 5),
                        "psnr_db": round(float(found.psnr[i]), 2), "far": bool(far)})
    summary = {"checkpoint": str(checkpoint), "steps": settings.steps, "starts": settings.starts,
               "feature_weight": settings.feature_weight if discriminator is not None else 0.0,
               "inception_weight": 0.0 if inception is None else
               (settings.inception_weight if settings.inception_weight >= 0 else 1.0),
               "reference_distance": None if ref is None else round(ref, 5), "photos": results}
    atomic_write_text(out / "projection.json", json.dumps(summary, indent=1) + "\n")
    return summary


def _side_by_side(photo: np.ndarray, found: np.ndarray, height: int = 128) -> np.ndarray:
    """The photo (as the generator sees it) and its reconstruction, scaled up to `height`."""
    from PIL import Image

    from dcgan.outputs.images import to_uint8

    pair = np.concatenate(to_uint8(np.stack([photo, found])), axis=1)
    scale = max(1, height // pair.shape[0])
    return np.asarray(Image.fromarray(pair).resize((pair.shape[1] * scale, pair.shape[0] * scale),
                                                   Image.NEAREST))


def _unique_stems(paths: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = path.stem or "photo"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def run_config(generator_path: Path):
    """The Config of the run a generator file belongs to, or None for a lone .keras file."""
    from dcgan.outputs.folder import RunPaths, saved_config

    for folder in (generator_path.parent, generator_path.parent.parent,
                   generator_path.parent.parent.parent):
        if (folder / "config.json").is_file():
            config, _ = saved_config(RunPaths(folder), say=False)
            return config
    return None


def load_discriminator(generator_path: Path):
    """The discriminator saved beside a generator (a run's checkpoints/), or None."""
    import keras

    from dcgan.models import layers  # noqa: F401 - registers the custom layers the file names

    path = generator_path.parent / "discriminator.keras"
    if not path.is_file():
        return None
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception:  # noqa: BLE001 - a foreign file: project on pixels alone
        return None
