"""Pictures of a run: the loss curves and the training-progress GIF."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dcgan.io import atomic_path, atomic_write_bytes


def plot_losses(csv_path: str | Path, out: str | Path) -> None:
    """Plot d_loss/g_loss and mean D(real)/D(fake) per epoch from log.csv into a PNG."""
    from matplotlib.figure import Figure  # no pyplot: works headless and inside notebooks

    with open(csv_path, encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch")]
    if not rows:
        return
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
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(out, buffer.getvalue())


def progress_gif(samples: str | Path, out: str | Path, frame_ms: int = 400) -> int:
    """Assemble samples/epoch_*.png into an animated GIF; return the number of frames."""
    from PIL import Image

    frames = sorted(Path(samples).glob("epoch_*.png"))
    if not frames:
        return 0
    images = [Image.open(p).convert("RGB") for p in frames]
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 4]  # linger on the newest
    with atomic_path(out) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0)
    return len(images)
