"""Small Keras callbacks: per-epoch sample grids and per-epoch model checkpoints."""

from __future__ import annotations

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
        self._save(path, generate_images(self.model.generator, self.latents), title)

    def _save(self, path, images, title):
        save_grid(path, images)
        self.last_path = path
        if self.show:
            show_image(path, title)


class EpochCheckpoint(keras.callbacks.Callback):
    """At the end of each epoch, save generator and discriminator as `.keras` files, atomically.

    A kill during a save leaves the previous files intact: each file is
    written under a temporary name, fsynced, then renamed into place.
    """

    def __init__(self, folder):
        super().__init__()
        self.folder = Path(folder)

    def on_epoch_end(self, epoch, logs=None):
        for network in (self.model.generator, self.model.discriminator):
            with atomic_path(self.folder / f"{network.name}.keras") as tmp:
                network.save(tmp)
