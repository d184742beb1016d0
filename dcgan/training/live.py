"""The notebook's live view of a training run: one display, redrawn in place.

Above, a status line (epoch, step, img/s, minutes per epoch, time left; "compiling the
training step ..." before the first step); below, the newest sample grid and the loss /
D-output curves, redrawn after each epoch.  Nothing accumulates: a 25-epoch run leaves one
status line and one picture, not 25 of each.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import keras

from dcgan.training.clock import Pace, images_text
from dcgan.outputs.images import html_figure
from dcgan.outputs.folder import RunPaths


class LiveView(keras.callbacks.Callback):
    """Keras callback that keeps a status line and a picture up to date in a notebook cell.

    `display` is IPython's (injectable for tests: it must return a handle with `update`)."""

    STATUS_EVERY_S = 2.0  # status redraws at most this often (Colab draws each one)

    def __init__(self, paths: RunPaths, epochs: int, steps_per_epoch: int, batch_size: int,
                 display=None, clock=None, grids=None):
        super().__init__()
        # `clock` (dcgan.training.clock.Clock): images seen in the status line; `grids` (the run's
        # SampleGrid): a grid it draws inside an epoch (sample_minutes) is shown at once
        self.clock, self.grids = clock, grids
        if display is None:
            from IPython.display import display  # only inside a notebook kernel
        self.paths, self.epochs, self.steps = paths, epochs, steps_per_epoch
        self.pace = Pace(epochs, steps_per_epoch, batch_size)
        self._display = display
        self.status_handle = self.picture_handle = None
        self.last_status = self.last_picture = self.last_grid_name = ""
        self._drawn_at = 0.0
        self.logs = {}
        self.best_epoch = None  # the best-scoring epoch so far (KeepBest), once there is one

    # ------------------------------------------------------------------ Keras hooks
    def on_train_begin(self, logs=None):
        self._status("compiling the training step (the first step takes a while) ...")
        self._picture("untrained generator", self.paths.epoch_grid(0))

    def on_epoch_begin(self, epoch, logs=None):
        self.pace.epoch_begin(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self.pace.step_end(batch + 1)
        self.logs = logs or {}
        if time.perf_counter() - self._drawn_at >= self.STATUS_EVERY_S or batch + 1 == self.steps:
            self._status(self._status_text())
        if (self.grids is not None and self.grids.last_path is not None
                and self.grids.last_path.name != self.last_grid_name):
            self._picture(self.grids.last_title, self.grids.last_path)

    def on_train_end(self, logs=None):
        if self.clock is not None and self.clock.stopped_by_budget:
            self._status(self._status_text() + " | stopped: the time budget (minutes) is spent; "
                         "run the cell again to go on")

    def on_epoch_end(self, epoch, logs=None):
        self.pace.epoch_end()
        self.logs = logs or self.logs
        self.best_epoch = int(self.logs["best_epoch"]) if "best_epoch" in self.logs else self.best_epoch
        self._status(self._status_text(after_epoch=True))
        grid = self.paths.epoch_grid(epoch + 1)
        self._picture(self.grids.last_title if self.grids is not None and self.grids.last_path == grid
                      else f"epoch {epoch + 1}", grid)

    # ---------------------------------------------------------------------- drawing
    def _status_text(self, after_epoch: bool = False) -> str:
        pace = self.pace
        step = self.clock.step if self.clock is not None else pace.step
        where = (f"epoch {pace.epoch + 1}/{self.epochs} done" if after_epoch else
                 f"epoch {pace.epoch + 1}/{self.epochs}, step {step}/{self.steps}")
        if self.clock is not None:
            where += f", {images_text(self.clock.images)}"
        losses = " ".join(f"{k} {float(v):.3f}" for k, v in self.logs.items()
                          if k in ("d_loss", "g_loss", "d_real", "d_fake", "swd", "fid"))
        summary = pace.summary(after_epoch) or "timing the first steps ..."
        if after_epoch and (pace.epoch + 1 == self.epochs or self.model_stopped()):
            summary = "finished"
        best = f"best: epoch {self.best_epoch}" if self.best_epoch else ""
        return " | ".join(part for part in (where, losses, best, summary) if part)

    def model_stopped(self) -> bool:
        return bool(getattr(self.model, "stop_training", False)) if self.model is not None else False

    def _status(self, text: str) -> None:
        from IPython.display import HTML

        self.last_status, self._drawn_at = text, time.perf_counter()
        content = HTML(f"<pre style='margin:0'>{html.escape(text)}</pre>")
        if self.status_handle is None:
            self.status_handle = self._display(content, display_id=True)
        else:
            self.status_handle.update(content)

    def _picture(self, title: str, grid) -> None:
        from IPython.display import HTML

        images = [(title, grid), ("losses and D outputs", self.paths.losses_plot)]
        parts = [html_figure(path, caption) for caption, path in images if path.exists()]
        if not parts:
            return
        self.last_picture, self.last_grid_name = title, Path(grid).name
        content = HTML("".join(parts))
        if self.picture_handle is None:
            self.picture_handle = self._display(content, display_id=True)
        else:
            self.picture_handle.update(content)
