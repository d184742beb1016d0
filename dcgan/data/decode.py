"""Image files -> uint8 (size, size, 3) squares: centre crop, then an antialiased resize.

`decode_all` yields every entry of a Source exactly once, decoded or with the reason it
could not be: the backend's own decoder where it has a faster one (TensorFlow's, which
decodes only a JPEG's crop window: dcgan.backends.tensorflow.decode_all), then Pillow for
what that left out (CMYK JPEGs, 16-bit PNGs, ...); on JAX and PyTorch Pillow for all,
in threads.  Each failing file is decoded once by Pillow, which names why.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError

from dcgan.data.sources import Source


def decode_all(source: Source, size: int, crop: int):
    """Yield (entry index, uint8 image or None, the original short side or why it failed),
    once per entry: the backend's decoder's images first, in its order, then Pillow's."""
    from dcgan import backend  # lazy: Keras, which only decoding for training needs

    done = np.zeros(len(source.entries), bool)
    if backend.decode_all is not None:
        for index, image, side in backend.decode_all(source, size, crop):
            done[index] = True
            yield index, image, side
    yield from decode_all_with_pillow(source, size, crop, np.flatnonzero(~done))


def decoder_name() -> str:
    """Which decoder makes the pixels here: the backend's (then Pillow for what it leaves), or
    Pillow alone.  Part of the cache's key: the two resize a little differently."""
    from dcgan import backend  # lazy: Keras

    if backend.decode_all is not None:
        return f"{backend.decode_all.__module__}+pillow"
    return "pillow"


def decode_all_with_pillow(source: Source, size: int, crop: int, indices=None,
                           threads: int | None = None):
    """Yield (entry index, uint8 image or None, short side or the reason it failed) for
    `indices` (default: every entry) in order, decoded by Pillow in threads."""
    def decode(index):
        try:
            return decode_one_with_pillow(source.read(source.entries[index]), size, crop)
        except Exception as error:  # any failure: the caller skips the file, naming why
            return None, reason(error)

    indices = range(len(source.entries)) if indices is None else [int(i) for i in indices]
    threads = threads or min(8, (os.cpu_count() or 1) + 1)
    chunk = 256  # bounded memory: never more than a chunk of decoded images in flight
    with ThreadPoolExecutor(threads) as pool:
        for start in range(0, len(indices), chunk):
            part = indices[start:start + chunk]
            for index, (image, side) in zip(part, pool.map(decode, part), strict=True):
                yield index, image, side


def decode_one_with_pillow(data: bytes, size: int, crop: int) -> tuple[np.ndarray, int]:
    """Encoded bytes -> (uint8 (size, size, 3), the original short side), as TensorFlow's
    decoder does it (dcgan.backends.tensorflow.decode_one)."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)  # first frame of an animation
        w, h = image.size
        side = min(w, h) if crop <= 0 else min(w, h, crop)
        if image.format == "JPEG" and side >= 2 * size:
            # Decode at 1/2, 1/4 or 1/8 scale, still at least `size` px across the crop.
            image.draft("RGB", (-(-w * size // side), -(-h * size // side)))
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            array = np.asarray(image, np.float64)
            peak = 65535.0 if array.max() > 255 else 255.0
            image = Image.fromarray(np.clip(array / peak * 255, 0, 255).astype(np.uint8))
        image = image.convert("RGB")
        scale = image.size[0] / w  # < 1 after a draft
        dw, dh = image.size
        dside = min(dw, dh, max(1, round(side * scale)))
        left, top = (dw - dside) // 2, (dh - dside) // 2
        image = image.crop((left, top, left + dside, top + dside))
        image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image, np.uint8), min(w, h)


def reason(error: Exception) -> str:
    """A short, file-independent reason for a skipped image."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image, or a format Pillow cannot read"
    if isinstance(error, FileNotFoundError):
        return "missing (a broken link, or deleted after the folder was listed)"
    if isinstance(error, OSError) and error.strerror:
        return f"cannot be read ({error.strerror.lower()})"
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__
