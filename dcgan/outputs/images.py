"""Image helpers: value ranges, grids, PNG and GIF files, inline display."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from dcgan.io import atomic_path, atomic_write_bytes


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Map images in [-1, 1] (the generator's tanh range) to uint8 [0, 255]."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile uint8 images (n, h, w, 3) into one uint8 image, `columns` wide (default: square)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = to_uint8(images)
    n, h, w, c = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, q = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top:top + h, left:left + w] = image
    return grid


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 image as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 image to `path` as PNG, atomically."""
    atomic_write_bytes(path, png_bytes(image))


def save_grid(path: str | os.PathLike, images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Tile `images` into a grid, save it as PNG and return the grid."""
    grid = make_grid(images, columns)
    save_png(path, grid)
    return grid


def save_gif(path: str | os.PathLike, frames: list, durations_ms: int | list[int]) -> None:
    """Write frames (uint8 arrays or PIL images) as a looping GIF, atomically."""
    frames = [f if isinstance(f, Image.Image) else Image.fromarray(np.asarray(f, np.uint8))
              for f in frames]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=durations_ms, loop=0)


def html_figure(path: str | os.PathLike, caption: str | None = None, max_width: str = "100%") -> str:
    """An inline HTML figure of a PNG at its own resolution (one image pixel, one screen pixel;
    narrowed only to fit the cell), with a caption."""
    import base64
    import html

    data = base64.b64encode(Path(path).read_bytes()).decode()
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f"<figure style='display:inline-block;margin:4px;vertical-align:top'>"
            f"<img src='data:image/png;base64,{data}' style='max-width:{max_width}'>{text}</figure>")


def show_image(path: str | os.PathLike, title: str | None = None) -> None:
    """Display a PNG inline at its native resolution (an HTML <img>, used inside notebooks: a
    1024-px grid of 128-px faces is shown at 1024 px, not shrunk into a figure)."""
    from IPython.display import HTML, display  # only called where something is shown

    display(HTML(html_figure(path, title)))
