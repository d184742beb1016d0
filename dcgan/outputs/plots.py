"""Pictures of a run: the loss curves and the training-progress GIF."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: works headless and inside notebooks
from matplotlib.ticker import MaxNLocator
from PIL import Image

from dcgan.outputs.images import save_gif
from dcgan.io import atomic_write_bytes


def loss_figure(csv_path: str | Path) -> Figure | None:
    """d_loss/g_loss and mean D(real)/D(fake) per epoch from log.csv (None before epoch 1)."""
    with open(csv_path, encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch")]
    if not rows:
        return None
    epochs = [int(r["epoch"]) for r in rows]
    figure = Figure(figsize=(9, 3.5))
    losses, outputs = figure.subplots(1, 2)
    for key, axes in (("d_loss", losses), ("g_loss", losses), ("d_real", outputs), ("d_fake", outputs)):
        values = [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]
        axes.plot(epochs, values, marker="o", markersize=3, label=key)
    losses.set_title("losses")
    outputs.set_title("mean D output (P(fake))")
    outputs.set_ylim(0, 1)
    for axes in (losses, outputs):
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, never 1.25
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_losses(csv_path: str | Path, out: str | Path) -> None:
    """Save `loss_figure(csv_path)` as a PNG at `out`."""
    figure = loss_figure(csv_path)
    if figure is None:
        return
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(out, buffer.getvalue())


def progress_gif(grids: list[Path], out: str | Path, frame_ms: int = 400) -> int:
    """Assemble the per-epoch sample grids into an animated GIF; return the number of frames."""
    if not grids:
        return 0
    frames = [Image.open(p).convert("RGB") for p in grids]
    save_gif(out, frames, [frame_ms] * (len(frames) - 1) + [frame_ms * 4])  # linger on the newest
    return len(frames)


def progress_preview(grids: list[Path], out: str | Path, frames: int = 12, side: int = 384) -> int:
    """A small progress GIF for showing inline: at most `frames` grids (evenly spaced, the
    first and the newest kept) scaled to `side` px; return the number of frames."""
    if not grids:
        return 0
    if len(grids) > frames:
        step = (len(grids) - 1) / (frames - 1)
        grids = [grids[round(i * step)] for i in range(frames)]
    images = []
    for path in grids:
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = side / max(image.size)
            if scale < 1:
                image = image.resize((round(image.width * scale), round(image.height * scale)),
                                     Image.LANCZOS)
            images.append(image)
    save_gif(out, images, [400] * (len(images) - 1) + [1600])
    return len(images)
