"""Small Keras callbacks: per-epoch sample grids and per-epoch model checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from dcgan.env import in_notebook
from dcgan.gan import generate_images
from dcgan.images import save_grid
from dcgan.io import atomic_path


def show_image(path: str | Path, title: str | None = None) -> None:
    """Display a PNG inline with matplotlib (used inside notebooks)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    image = np.asarray(Image.open(path))
    fig = plt.figure(figsize=(6, 6 * image.shape[0] / image.shape[1]))
    plt.imshow(image)
    plt.axis("off")
    if title:
        plt.title(title)
    plt.show()
    plt.close(fig)


class SampleGrid(keras.callbacks.Callback):
    """After every epoch, save the generator's output for fixed latents as a PNG grid.

    Files: `samples/real.png` (training images, once), `samples/epoch_000.png`
    (the untrained generator) and `samples/epoch_NNN.png` after epoch NNN
    (1-based, continuing across resumed runs).  Fixed latents make the grids
    of different epochs directly comparable.
    """

    def __init__(self, folder, latents, real_images=None, show=None):
        super().__init__()
        self.folder = Path(folder)
        self.latents = np.asarray(latents, np.float32)
        self.real_images = real_images
        self.show = in_notebook() if show is None else show
        self.last_path = None

    def on_train_begin(self, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.real_images is not None and not (self.folder / "real.png").exists():
            self._save(self.folder / "real.png", self.real_images, "real images")
        if not (self.folder / "epoch_000.png").exists():
            self._render(self.folder / "epoch_000.png", "untrained generator")

    def on_epoch_end(self, epoch, logs=None):
        self._render(self.folder / f"epoch_{epoch + 1:03d}.png", f"epoch {epoch + 1}")

    def _render(self, path, title):
        self._save(path, generate_images(self.model.sampling_generator, self.latents), title)

    def _save(self, path, images, title):
        save_grid(path, images)
        self.last_path = path
        if self.show:
            show_image(path, title)


class Checkpointer(keras.callbacks.Callback):
    """Every `every` epochs and after the last one, save a complete checkpoint (dcgan.checkpoint)
    and export `generator.keras`, `generator_ema.keras` and `discriminator.keras`.

    All writes are atomic: a kill during a save leaves the previous files intact.
    """

    def __init__(self, folder, config, latents, every=1, keep=3):
        super().__init__()
        self.folder = Path(folder)
        self.config = config
        self.latents = latents
        self.every = max(1, int(every))
        self.keep = keep
        self.last_saved = None

    def on_train_begin(self, logs=None):
        from dcgan.checkpoint import remove_stale_partials

        if self.folder.is_dir():
            remove_stale_partials(self.folder)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        final = done == self.config.epochs
        if done % self.every and not final:
            return
        from dcgan.checkpoint import save_checkpoint

        self.last_saved = save_checkpoint(self.folder, self.model, done, self.config, self.latents,
                                          final=final, keep=self.keep)
        for network in (self.model.generator, self.model.ema_generator, self.model.discriminator):
            if network is not None:
                with atomic_path(self.folder / f"{network.name}.keras") as tmp:
                    network.save(tmp)


class DivergenceGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss (or weight, checked each epoch) with one clear message."""

    def __init__(self, checkpoints_folder, steps_per_epoch):
        super().__init__()
        self.folder = Path(checkpoints_folder)
        self.steps_per_epoch = steps_per_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = [k for k in ("d_loss", "g_loss") if k in (logs or {}) and not np.isfinite(float(logs[k]))]
        if bad:
            self._stop(f"{bad[0]} is {float(logs[bad[0]])} at epoch {self.epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        for network in (self.model.generator, self.model.discriminator):
            if not all(np.isfinite(w).all() for w in network.get_weights()):
                self._stop(f"{network.name} weights are not finite after epoch {epoch + 1}")

    def _stop(self, what):
        from dcgan.checkpoint import latest_checkpoint
        from dcgan.errors import TrainingDiverged

        last = latest_checkpoint(self.folder)
        hint = (f"the last good checkpoint is {last}; resume from it with a lower learning rate "
                "(python -m dcgan train --resume RUN --d-learning-rate ...)" if last else
                "no checkpoint was saved yet; lower the learning rates and start again")
        raise TrainingDiverged(f"training diverged: {what}; {hint}")


class EpochLog(keras.callbacks.Callback):
    """Per-epoch CSV (losses, mean D outputs, seconds, images/s), loss-curve PNG and progress GIF.

    Appends across resumed runs; the PNG and GIF are rebuilt from all epochs so far.
    """

    FIELDS = ("epoch", "d_loss", "g_loss", "d_real", "d_fake", "seconds", "images_per_s")

    def __init__(self, run_folder, batch_size, steps_per_epoch, samples_folder=None):
        super().__init__()
        self.root = Path(run_folder)
        self.csv = self.root / "log.csv"
        self.batch_size = batch_size
        self.steps = steps_per_epoch
        self.samples = Path(samples_folder) if samples_folder else None
        self.started = None

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        import time

        seconds = time.perf_counter() - self.started
        logs = logs or {}
        row = {"epoch": epoch + 1, "seconds": round(seconds, 3),
               "images_per_s": round(self.steps * self.batch_size / seconds, 2),
               **{k: float(logs[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake") if k in logs}}
        new = not self.csv.exists()
        with open(self.csv, "a", encoding="utf-8") as f:
            if new:
                f.write(",".join(self.FIELDS) + "\n")
            f.write(",".join(str(row.get(k, "")) for k in self.FIELDS) + "\n")
            f.flush()
            os.fsync(f.fileno())
        from dcgan.plots import plot_losses, progress_gif

        plot_losses(self.csv, self.root / "losses.png")
        if self.samples is not None:
            progress_gif(self.samples, self.root / "progress.gif")


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar per epoch (steps, images/s, losses); one summary line per epoch otherwise."""

    def __init__(self, epochs, steps_per_epoch, batch_size, bar=None):
        super().__init__()
        self.epochs, self.steps, self.batch_size = epochs, steps_per_epoch, batch_size
        from dcgan.env import show_progress

        self.bar_enabled = show_progress() if bar is None else bar
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self.epoch, self.started = epoch, time.perf_counter()
        if self.bar_enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}",
                            unit="step", leave=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            import time

            rate = (batch + 1) * self.batch_size / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(_format(logs) + f" {rate:.0f} img/s", refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        import time

        seconds = time.perf_counter() - self.started
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        else:
            print(f"epoch {epoch + 1}/{self.epochs}: {_format(logs)} "
                  f"({seconds:.1f}s, {self.steps * self.batch_size / seconds:.0f} img/s)", flush=True)


def _format(logs):
    return " ".join(f"{k}={float(v):.4f}" for k, v in (logs or {}).items())
