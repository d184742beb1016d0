"""Small Keras callbacks: sample grids, checkpoints, divergence guard, epoch log, progress."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from dcgan import backend
from dcgan.training.checkpoint import save_checkpoint
from dcgan.training.clock import Every, Pace, images_text
from dcgan.env import in_notebook, show_progress
from dcgan.errors import TrainingDiverged
from dcgan.outputs.sampling import generate_images
from dcgan.outputs.images import save_grid, show_image
from dcgan.io import atomic_write_text, remove_stale_partials
from dcgan.outputs.plots import plot_losses, progress_gif
from dcgan.outputs.folder import PARTIAL_PATTERN, RunPaths, latest_checkpoint, write_exports

log = logging.getLogger("dcgan.train")


class SampleGrid(keras.callbacks.Callback):
    """After every epoch, save the generator's output for fixed latents as a PNG grid.

    Files: `samples/real.png` (training images, once), `samples/epoch_000.png`
    (the untrained generator) and `samples/epoch_NNN.png` after epoch NNN
    (1-based, continuing across resumed runs).  Fixed latents make the grids
    of different epochs directly comparable.  `save=False`: draw the grids but write
    nothing (the non-chief processes of a multi-host run take part in the computation).
    With a `clock` (dcgan.training.clock.Clock), captions say how many images the generator had seen,
    and `minutes` > 0 adds a grid at least that often inside an epoch,
    `samples/epoch_EEE_IIIIIIIIIIIimg.png` (E whole epochs, I images seen).
    """

    def __init__(self, paths: RunPaths, latents, real_images=None, show=None, save=True,
                 clock=None, minutes: float = 0):
        super().__init__()
        self.paths = paths
        self.save = save
        self.latents = np.asarray(latents, np.float32)
        self.real_images = real_images
        self.show = in_notebook() if show is None else show
        self.last_path = self.last_title = None
        self.clock = clock
        self.timer = Every(minutes if clock is not None else 0)

    def on_train_begin(self, logs=None):
        if not self.save:
            return
        self.paths.samples.mkdir(parents=True, exist_ok=True)
        if self.real_images is not None and not self.paths.real_grid.exists():
            self._save(self.paths.real_grid, self.real_images, "real images")
        if not self.paths.epoch_grid(0).exists():
            self._render(self.paths.epoch_grid(0), "untrained generator")

    def on_train_batch_end(self, batch, logs=None):
        if self.timer.due() and not self.clock.epoch_done:  # an epoch's end draws its own
            self.render_now()

    def on_epoch_end(self, epoch, logs=None):
        self.timer.reset()
        self._render(self.paths.epoch_grid(epoch + 1), f"epoch {epoch + 1}{self._seen()}")

    def render_now(self) -> None:
        """A grid of the generator as it is now, inside an epoch."""
        clock = self.clock
        backend.sync_state(self.model)
        self._render(self.paths.step_grid(clock.epoch, clock.images),
                     f"epoch {clock.epoch + 1}, step {clock.step}/{clock.steps}{self._seen()}")
        self.timer.reset()

    def _seen(self) -> str:
        return f" ({images_text(self.clock.images)} seen)" if self.clock is not None else ""

    def _render(self, path, title):
        self._save(path, generate_images(self.model.sampling_generator, self.latents), title)

    def _save(self, path, images, title):
        if not self.save:
            return
        save_grid(path, images)
        self.last_path, self.last_title = path, title
        if self.show:
            show_image(path, title)


class Checkpointer(keras.callbacks.Callback):
    """Every `every` epochs and after the last one, save a complete checkpoint (dcgan.training.checkpoint)
    and export `generator.keras`, `generator_ema.keras` and `discriminator.keras`.

    With a `clock` (dcgan.training.clock.Clock), `minutes` > 0 also saves at the first step that
    many minutes after the last save, mid-epoch (`ckpt-EEEE-SSSSSS`, resumed bit-exactly),
    and each checkpoint records the images seen and `data_identity` (the run's images,
    dcgan.data.pipeline.data_identity).  All writes are atomic: a kill during a save leaves the
    previous files intact.
    """

    def __init__(self, paths: RunPaths, config, latents, every=1, keep=3, clock=None,
                 minutes: float = 0, data_identity: str | None = None):
        super().__init__()
        self.paths = paths
        self.config = config
        self.latents = latents
        self.every = max(1, int(every))
        self.keep = keep
        self.clock, self.data_identity = clock, data_identity
        self.timer = Every(minutes if clock is not None else 0)
        self.last_saved = None
        self.done = None  # the last epoch finished
        self.saved_epoch = self.saved_final = None

    def on_train_batch_end(self, batch, logs=None):
        if self.timer.due() and not self.clock.epoch_done:  # an epoch's end saves itself
            self.save_now()

    def save_now(self) -> Path:
        """A checkpoint of the state as it is now, inside an epoch."""
        backend.sync_state(self.model)
        return self._save(final=False, step=self.clock.step)

    def on_train_begin(self, logs=None):
        if self.paths.checkpoints.is_dir():
            remove_stale_partials(self.paths.checkpoints, PARTIAL_PATTERN)

    def on_epoch_end(self, epoch, logs=None):
        self.done = epoch + 1
        final = self.done == self.config.epochs
        if self.done % self.every and not final:
            return
        self._save(final)

    def on_train_end(self, logs=None):
        stopped = (self.done is not None and self.done < self.config.epochs
                   and getattr(self.model, "stop_training", False))
        if not stopped:
            return
        if self.clock is not None and self.clock.stopped_by_budget:
            # the time budget: the run goes on later (a mid-epoch stop saved already)
            if self.clock.epoch_done and self.saved_epoch != self.done:
                self._save(final=False)
        elif self.saved_final != self.done:  # patience: the last epoch is the run's final one
            self._save(final=True)

    def _save(self, final: bool, step: int = 0) -> Path:
        epoch = self.clock.epoch if step else self.done
        self.saved_epoch = None if step else self.done
        self.saved_final = self.done if final else None
        position = {**(self.clock.position() if self.clock is not None else {}),
                    **({"data_identity": self.data_identity} if self.data_identity else {})}
        self.last_saved = save_checkpoint(self.paths.checkpoints, self.model, epoch, self.config,
                                          self.latents, final=final, keep=self.keep, step=step,
                                          position=position)
        self.timer.reset()
        write_exports(self.paths, (self.model.generator, self.model.ema_generator, self.model.discriminator))
        return self.last_saved


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
        last = latest_checkpoint(self.folder)
        hint = (f"the last good checkpoint is {last}; resume from it with a lower learning rate "
                "(python -m dcgan train --resume RUN --allow-config-change --d-learning-rate ...)" if last else
                "no checkpoint was saved yet; lower the learning rates and start again")
        raise TrainingDiverged(f"training diverged: {what}; {hint}")


class EpochLog(keras.callbacks.Callback):
    """Per-epoch CSV (losses, mean D outputs, seconds, images/s), loss-curve PNG and progress GIF.

    Appends across resumed runs; the PNG and GIF are rebuilt from all epochs so far.
    """

    # swd (or fid) and best_epoch: in the epochs the generator was scored (best_every);
    # ada_p: the adaptive augmentation strength at the epoch's end (ada_target)
    # kimg: thousands of images seen at the epoch's end (resumes included)
    FIELDS = ("epoch", "kimg", "d_loss", "g_loss", "d_real", "d_fake", "seconds", "images_per_s",
              "swd", "fid", "best_epoch", "ada_p")

    def __init__(self, paths: RunPaths, batch_size, steps_per_epoch, resumed_epoch: int = 0,
                 clock=None):
        super().__init__()
        self.paths = paths
        self.batch_size = batch_size
        self.steps = steps_per_epoch
        self.resumed_epoch = resumed_epoch
        self.clock = clock
        self.started = None
        self.steps_at_begin = 0
        self.trimmed = False

    def on_train_begin(self, logs=None):
        # Rows are written before an epoch's checkpoint (a kill between the two must not lose
        # the row); a resume from epoch N drops rows of later epochs, which it trains again.
        # (Once: a resume from mid-epoch runs fit() twice.)
        trimmed, self.trimmed = self.trimmed, True
        if trimmed or not self.paths.log.exists():
            return
        lines = self.paths.log.read_text(encoding="utf-8").splitlines()
        kept = lines[:1] + [line for line in lines[1:]
                            if line.split(",", 1)[0].isdigit() and int(line.split(",", 1)[0]) <= self.resumed_epoch]
        if kept != lines:
            atomic_write_text(self.paths.log, "\n".join(kept) + "\n")

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.steps_at_begin = self.clock.step if self.clock is not None else 0

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        logs = logs or {}
        timed_steps = self.steps - self.steps_at_begin  # a resumed epoch: the steps run here
        row = {"epoch": epoch + 1, "seconds": round(seconds, 3),
               "images_per_s": round(timed_steps * self.batch_size / seconds, 2),
               **({"kimg": round(self.clock.kimg, 3)} if self.clock is not None else {}),
               **{k: float(logs[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake", "swd", "fid", "ada_p")
                  if k in logs}, **({"best_epoch": int(logs["best_epoch"])} if "best_epoch" in logs else {})}
        new = not self.paths.log.exists()
        # A log begun by an older dcgan keeps its own columns.
        columns = self.FIELDS if new else self.paths.log.open(encoding="utf-8").readline().strip().split(",")
        with open(self.paths.log, "a", encoding="utf-8") as f:
            if new:
                f.write(",".join(columns) + "\n")
            f.write(",".join(str(row.get(k, "")) for k in columns) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.plots()

    def plots(self) -> None:
        """The loss curves and the progress GIF from everything so far."""
        if self.paths.log.exists():  # none before the first epoch's end
            plot_losses(self.paths.log, self.paths.losses_plot)
        progress_gif(self.paths.epoch_grids(), self.paths.progress_gif)


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar per epoch (steps, images/s, losses); one summary line per epoch otherwise.

    `eta`: also log the time left after each epoch (off in a notebook, whose live view shows
    it instead; the first steps' pace is dcgan.training.clock.PlanLine's).  `leave`: keep each finished
    epoch's bar (a terminal's history) or let the next one replace it (a notebook)."""

    def __init__(self, epochs, steps_per_epoch, batch_size, bar=None, eta=True, leave=True):
        super().__init__()
        self.epochs, self.steps, self.batch_size = epochs, steps_per_epoch, batch_size
        self.bar_enabled = show_progress() if bar is None else bar
        self.bar = None
        self.eta, self.leave = eta, leave
        self.pace = Pace(epochs, steps_per_epoch, batch_size)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch, time.perf_counter()
        self.pace.epoch_begin(epoch)
        if self.bar_enabled:
            self.bar = tqdm(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}",
                            unit="step", leave=self.leave)

    def on_train_batch_end(self, batch, logs=None):
        self.pace.step_end(batch + 1)
        if self.bar is not None:
            rate = (batch + 1) * self.batch_size / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix_str(_format(logs) + f" {rate:.0f} img/s", refresh=False)
            self.bar.update(batch + 1 - self.bar.n)  # steps_per_execution > 1: several at once

    def on_train_end(self, logs=None):
        if self.bar is not None:  # stopped inside an epoch (the time budget)
            self.bar.close()
            self.bar = None

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        self.pace.epoch_end()
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        else:
            print(f"epoch {epoch + 1}/{self.epochs}: {_format(logs)} "
                  f"({seconds:.1f}s, {self.steps * self.batch_size / seconds:.0f} img/s)", flush=True)
        summary = self.pace.summary(after_epoch=True) if self.eta else None
        if summary and epoch + 1 < self.epochs:
            log.info("pace: %s", summary)


def _format(logs):
    return " ".join(f"{k}={int(v)}" if k == "best_epoch" else f"{k}={float(v):.4f}"
                    for k, v in (logs or {}).items())
