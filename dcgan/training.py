"""Training and generation as library functions (the CLI and the notebook call these)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import fields
from pathlib import Path

import keras
import numpy as np

from dcgan.callbacks import Checkpointer, DivergenceGuard, EpochLog, ProgressBar, SampleGrid
from dcgan.checkpoint import latest_checkpoint, restore_checkpoint, write_environment
from dcgan.config import RESUMABLE_CHANGES, Config
from dcgan.data import load_real_images, make_dataset
from dcgan.errors import CheckpointError, DcganError
from dcgan.evaluate import PeriodicEval
from dcgan.gan import DCGAN, generate_images, latents_for
from dcgan.images import save_grid
from dcgan.models import build_discriminator, build_generator

SAMPLE_LATENT_SEED_OFFSET = 1_000_003  # sample latents differ from the training stream
log = logging.getLogger("dcgan.train")


class RunPaths:
    """Where a run keeps its files."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.environment = self.root / "environment.json"
        self.samples = self.root / "samples"
        self.latents = self.samples / "latents.npy"
        self.checkpoints = self.root / "checkpoints"
        self.generator = self.checkpoints / "generator.keras"
        self.discriminator = self.checkpoints / "discriminator.keras"
        self.log = self.root / "log.csv"

    def exists(self) -> bool:
        return self.config.exists() or self.checkpoints.exists()


def build_gan(config: Config) -> DCGAN:
    """A compiled DCGAN for `config` (Adam for both networks)."""
    gan = DCGAN(build_generator(config), build_discriminator(config),
                label_mode=config.label_mode, label_noise=config.label_noise,
                label_smoothing=config.label_smoothing, seed=config.seed, ema_decay=config.ema_decay,
                diffaugment=config.diffaugment)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(config.d_learning_rate, config.beta_1, config.beta_2),
        g_optimizer=keras.optimizers.Adam(config.g_learning_rate, config.beta_1, config.beta_2),
        jit_compile={"auto": "auto", "true": True, "false": False}[config.jit_compile],
    )
    return gan


def resolve_run(config: Config, resume: bool | str = False, overwrite: bool = False,
                allow_config_change: bool = False) -> tuple[Config, Path | None]:
    """Decide between a new run and a resumed one; return (config to use, checkpoint or None).

    `resume`: False (a new run; refuses an existing one unless `overwrite`), True
    (continue `config.out_dir`; it must hold a complete checkpoint) or "auto"
    (continue when there is a checkpoint, else start: what a notebook re-run wants).
    """
    paths = RunPaths(config.out_dir)
    if resume and paths.config.exists():
        saved = Config.from_json(paths.config)
        checkpoint = latest_checkpoint(paths.checkpoints)
        if checkpoint is not None:
            changed = [f.name for f in fields(Config) if f.name not in RESUMABLE_CHANGES
                       and f.name != "out_dir" and getattr(saved, f.name) != getattr(config, f.name)]
            if changed and not allow_config_change:
                detail = ", ".join(f"{n} ({getattr(saved, n)!r} -> {getattr(config, n)!r})"
                                   for n in changed[:4])
                raise CheckpointError(
                    f"{paths.root}: the saved run differs in {detail}; drop those flags to resume "
                    "as saved, pass --allow-config-change to resume with them, or use a new --out")
            merged = config if changed else saved.replace(
                **{n: getattr(config, n) for n in RESUMABLE_CHANGES}, out_dir=config.out_dir)
            return merged, checkpoint
    if resume is True:
        raise CheckpointError(f"{paths.root}: no complete checkpoint to resume from")
    if paths.exists() and not overwrite and resume != "auto":
        raise CheckpointError(f"{paths.root} already holds a run; resume it with --resume, choose "
                              "another --out, or pass --overwrite to replace it")
    if paths.exists():
        for item in (paths.samples, paths.checkpoints, paths.root / "tensorboard"):
            shutil.rmtree(item, ignore_errors=True)
        for item in (paths.config, paths.log, paths.root / "losses.png", paths.root / "progress.gif"):
            item.unlink(missing_ok=True)
    return config, None


def sample_latents(config: Config, paths: RunPaths) -> np.ndarray:
    """The run's fixed sample latents: read from the run folder, or made and stored there."""
    if paths.latents.exists():
        latents = np.load(paths.latents, allow_pickle=False)
        if latents.shape == (config.num_samples, config.latent_dim):
            return latents
    latents = latents_for(config.num_samples, config.latent_dim,
                          config.seed + SAMPLE_LATENT_SEED_OFFSET)
    paths.samples.mkdir(parents=True, exist_ok=True)
    np.save(paths.latents, latents)
    return latents


def train(config: Config, resume: bool | str = False, overwrite: bool = False,
          allow_config_change: bool = False, callbacks: list | None = None,
          show_samples: bool | None = None, progress: bool | None = None):
    """Train (or resume) a DCGAN as `config` says; return (gan, history).

    Writes to `config.out_dir`: `config.json`, `environment.json` (versions,
    device), `samples/epoch_NNN.png` grids for fixed latents, `checkpoints/ckpt-EEEE/`
    (complete state, atomic) plus `generator.keras` / `discriminator.keras`,
    `log.csv`, `losses.png` and `progress.gif`.
    """
    config, checkpoint = resolve_run(config.validated(), resume, overwrite, allow_config_change)
    paths = RunPaths(config.out_dir)
    initial_epoch = 0
    keras.utils.set_random_seed(config.seed)
    gan = build_gan(config)
    if checkpoint is not None:
        meta = restore_checkpoint(checkpoint, gan)
        initial_epoch = int(meta["epoch"])
        latents = np.load(checkpoint / "latents.npy", allow_pickle=False)
        log.info("resuming %s from %s (epoch %d, %d steps)", paths.root, checkpoint.name,
                 initial_epoch, meta["d_steps"])
        if initial_epoch >= config.epochs:
            log.info("%s has already trained %d of %d epochs; pass --epochs N to go on",
                     paths.root, initial_epoch, config.epochs)
            return gan, None
    dataset, count = make_dataset(config, first_epoch=initial_epoch)
    paths.root.mkdir(parents=True, exist_ok=True)
    config.to_json(paths.config)
    write_environment(paths.environment)
    if checkpoint is None:
        latents = sample_latents(config, paths)
    steps = config.steps_per_epoch or count // config.batch_size
    real = load_real_images(config, config.num_samples)
    all_callbacks = [
        DivergenceGuard(paths.checkpoints, steps),
        SampleGrid(paths.samples, latents, real, show=show_samples),
        Checkpointer(paths.checkpoints, config, latents, every=config.checkpoint_every,
                     keep=config.keep_checkpoints),
        EpochLog(paths.root, config.batch_size, steps, paths.samples),
        ProgressBar(config.epochs, steps, config.batch_size, bar=progress),
        *([keras.callbacks.TensorBoard(str(paths.root / "tensorboard"))] if config.tensorboard else []),
        *([PeriodicEval(config, config.eval_every, config.eval_images, paths.root / "metrics.jsonl")]
          if config.eval_every else []),
        *(callbacks or []),
    ]
    history = gan.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=steps, callbacks=all_callbacks, verbose=0, shuffle=False)
    return gan, history


def load_generator(checkpoint: str | Path, ema: bool = True) -> keras.Model:
    """Load a generator from a run folder, its `checkpoints/` folder or a `.keras` file.

    In a folder, the EMA generator (`generator_ema.keras`) is preferred unless `ema=False`.
    """
    path = Path(checkpoint)
    names = (["generator_ema.keras"] if ema else []) + ["generator.keras"]
    candidates = [path] + [folder / name for name in names
                           for folder in (path, RunPaths(path).checkpoints)]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        if not path.exists():
            raise CheckpointError(f"{checkpoint}: no such run folder or .keras file")
        raise CheckpointError(f"{checkpoint}: holds no generator.keras (has the run finished an epoch?)")
    try:
        return keras.saving.load_model(found, compile=False, safe_mode=True)
    except Exception as e:  # a corrupt or foreign file: one line, not a traceback
        raise CheckpointError(f"{found}: not a loadable Keras model ({type(e).__name__}: {e})") from None


def seed_latents(seeds, latent_dim: int) -> np.ndarray:
    """One latent per seed: image k of `--seeds` depends only on seed k."""
    return np.concatenate([latents_for(1, latent_dim, int(s)) for s in seeds]) if len(seeds) else \
        np.zeros((0, latent_dim), np.float32)


def generate(checkpoint: str | Path, n: int = 64, seed: int = 0, out: str | Path = "faces.png",
             columns: int | None = None, seeds=None, ema: bool = True) -> np.ndarray:
    """Generate images from a saved generator, save them as a grid at `out`, return them.

    With `seeds`, one image per seed (reproducible one by one); else `n` images from `seed`.
    """
    generator = load_generator(checkpoint, ema=ema)
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
                out: str | Path = "walk.png", frame_ms: int = 120, ema: bool = True) -> np.ndarray:
    """Walk the latent space from seed `seed_from`'s face to `seed_to`'s; a PNG strip or a GIF."""
    if steps < 2:
        raise DcganError(f"--steps {steps}: need at least 2")
    generator = load_generator(checkpoint, ema=ema)
    a, b = seed_latents([seed_from, seed_to], int(generator.input_shape[-1]))
    images = generate_images(generator, slerp(a, b, np.linspace(0, 1, steps)))
    if str(out).lower().endswith(".gif"):
        from PIL import Image

        from dcgan.images import to_uint8
        from dcgan.io import atomic_path

        frames = [Image.fromarray(x) for x in to_uint8(images)]
        frames += frames[-2:0:-1]  # and back again
        with atomic_path(out) as tmp:
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                           duration=frame_ms, loop=0)
    else:
        save_grid(out, images, columns=steps)
    return images


def evaluate(checkpoint: str | Path, data: str | None = None, metrics=("swd",), n: int = 1024,
             ema: bool = True, out: str | Path | None = None,
             inception_weights: str | None = "imagenet") -> dict:
    """Score a saved generator against real images; write JSON (and the run's metrics.jsonl)."""
    import json

    from dcgan.evaluate import append_jsonl, real_sets, score

    generator = load_generator(checkpoint, ema=ema)
    run = Path(checkpoint) if Path(checkpoint).is_dir() else None
    if run is not None and not (run / "config.json").exists():
        run = None
    config = Config.from_json(run / "config.json") if run else Config.from_preset("seed128")
    if data is None and run is None:
        raise DcganError(f"{checkpoint}: not a run folder; say which images to compare with: --data")
    size = int(generator.output_shape[1])
    config = config.replace(data=data or config.data, image_size=size)
    real, floor = real_sets(config, n)
    results = {"checkpoint": str(checkpoint), "data": config.data, "generator": "ema" if ema else "raw",
               **score(generator, real, floor, tuple(metrics), inception_weights)}
    if out is None and run is not None:
        out = run / "eval.json"
    if out is not None:
        from dcgan.io import atomic_write_text

        atomic_write_text(out, json.dumps(results, indent=1) + "\n")
    if run is not None:
        append_jsonl(run / "metrics.jsonl", results)
    return results
