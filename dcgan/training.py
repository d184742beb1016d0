"""Training and generation as library functions (the CLI and the notebook call these)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import keras
import numpy as np

from dcgan.callbacks import EpochCheckpoint, SampleGrid
from dcgan.config import Config
from dcgan.data import load_real_images, make_dataset
from dcgan.errors import CheckpointError
from dcgan.gan import DCGAN, generate_images, latents_for
from dcgan.images import save_grid
from dcgan.models import build_discriminator, build_generator

SAMPLE_LATENT_SEED_OFFSET = 1_000_003  # sample latents differ from the training stream


class RunPaths:
    """Where a run keeps its files."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.samples = self.root / "samples"
        self.latents = self.samples / "latents.npy"
        self.checkpoints = self.root / "checkpoints"
        self.generator = self.checkpoints / "generator.keras"
        self.discriminator = self.checkpoints / "discriminator.keras"
        self.log = self.root / "log.csv"


def build_gan(config: Config) -> DCGAN:
    """A compiled DCGAN for `config` (Adam for both networks)."""
    gan = DCGAN(build_generator(config), build_discriminator(config),
                label_mode=config.label_mode, label_noise=config.label_noise,
                label_smoothing=config.label_smoothing, seed=config.seed)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(config.d_learning_rate, config.beta_1, config.beta_2),
        g_optimizer=keras.optimizers.Adam(config.g_learning_rate, config.beta_1, config.beta_2),
        jit_compile={"auto": "auto", "true": True, "false": False}[config.jit_compile],
    )
    return gan


def prepare_run(config: Config, overwrite: bool = False) -> RunPaths:
    """Create the run folder and write `config.json`; refuse to clobber another run."""
    paths = RunPaths(config.out_dir)
    if paths.config.exists() or paths.checkpoints.exists():
        if not overwrite:
            raise CheckpointError(
                f"{paths.root} already holds a run; choose another --out, or pass --overwrite "
                "to replace it")
        for item in (paths.samples, paths.checkpoints):
            shutil.rmtree(item, ignore_errors=True)
        for item in (paths.config, paths.log):
            item.unlink(missing_ok=True)
    paths.root.mkdir(parents=True, exist_ok=True)
    config.to_json(paths.config)
    return paths


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


def train(config: Config, overwrite: bool = False, verbose: int | str = "auto",
          callbacks: list | None = None, show_samples: bool | None = None):
    """Train a DCGAN as `config` says; return (gan, history).

    Writes to `config.out_dir`: `config.json`, `samples/` grids for fixed
    latents (one per epoch), `checkpoints/{generator,discriminator}.keras`
    (after each epoch) and `log.csv` (per-epoch losses).
    """
    config = config.validated()
    dataset, count = make_dataset(config)  # fails early, before the run folder is touched
    paths = prepare_run(config, overwrite=overwrite)
    keras.utils.set_random_seed(config.seed)
    gan = build_gan(config)
    steps = config.steps_per_epoch or count // config.batch_size
    real = load_real_images(config, config.num_samples)
    grid = SampleGrid(paths.samples, sample_latents(config, paths), real, show=show_samples)
    all_callbacks = [
        grid,
        EpochCheckpoint(paths.checkpoints),
        keras.callbacks.CSVLogger(str(paths.log), append=True),
        *(callbacks or []),
    ]
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    history = gan.fit(dataset.repeat(), epochs=config.epochs, steps_per_epoch=steps,
                      callbacks=all_callbacks, verbose=verbose, shuffle=False)
    return gan, history


def load_generator(checkpoint: str | Path) -> keras.Model:
    """Load a generator from a run folder, its `checkpoints/` folder or a `.keras` file."""
    path = Path(checkpoint)
    candidates = [path, path / "generator.keras", RunPaths(path).generator]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        if not path.exists():
            raise CheckpointError(f"{checkpoint}: no such run folder or .keras file")
        raise CheckpointError(f"{checkpoint}: holds no generator.keras (has the run finished an epoch?)")
    try:
        return keras.saving.load_model(found, compile=False, safe_mode=True)
    except Exception as e:  # a corrupt or foreign file: one line, not a traceback
        raise CheckpointError(f"{found}: not a loadable Keras model ({type(e).__name__}: {e})") from None


def generate(checkpoint: str | Path, n: int = 64, seed: int = 0, out: str | Path = "faces.png",
             columns: int | None = None) -> np.ndarray:
    """Generate `n` images from a saved generator, save them as a grid at `out`, return them."""
    generator = load_generator(checkpoint)
    images = generate_images(generator, latents_for(n, int(generator.input_shape[-1]), seed))
    save_grid(out, images, columns)
    return images
