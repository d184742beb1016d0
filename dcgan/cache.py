"""Decode a Source once into a uint8 file cache, then feed training from that file.

Build: entries -> parallel TensorFlow decode (`decode_and_crop_jpeg` for
JPEGs, so only the crop window is decoded) -> centre square crop -> resize ->
uint8, written image after image to `<key>.u8.partial-<pid>`.  Entries that
TensorFlow cannot decode (CMYK JPEGs, odd PNGs, WebP on old builds) are
retried with Pillow; those that still fail (or are missing, or are broken
links), and images whose short side is below `min_side`, are skipped, each
named once and counted in one summary line.  The finished file is fsynced
and renamed into place, and only then is `<key>.json` (its description)
written: a run killed mid-build leaves only a partial file, removed by the
next build.  A cache in an older format is removed when its successor is built.

Read: batches of shuffled indices (dcgan.data) -> `os.pread` of each image.
Host memory stays at a few batches whatever the data set size (the file
goes through the OS page cache, not the process), and every epoch is a full
random shuffle, which a `tf.data` cache + shuffle buffer cannot give
without holding the buffer in RAM.

The key hashes the source's file list (names, sizes, times), the crop, the
image size and the small-image floor, so a change to any of them builds a new cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from dcgan.env import show_progress
from dcgan.errors import DataError
from dcgan.io import atomic_write_text, remove_stale_partials
from dcgan.sources import Source

CACHE_VERSION = 2  # 2: images below the min_side floor are skipped
log = logging.getLogger("dcgan.data")


def default_cache_root() -> Path:
    """`$DCGAN_CACHE`, else `~/.cache/dcgan` (keep it on local disk, not a Drive mount)."""
    return Path(os.environ.get("DCGAN_CACHE") or Path.home() / ".cache" / "dcgan")


@dataclass
class ImageCache:
    """A finished cache file of `count` uint8 images of `size`x`size`x3."""

    path: Path
    count: int
    size: int
    meta: dict

    @property
    def image_bytes(self) -> int:
        return self.size * self.size * 3

    def read(self, indices) -> np.ndarray:
        """The images at `indices` as uint8 (len(indices), size, size, 3)."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        out = np.empty((len(indices), self.size, self.size, 3), np.uint8)
        n = self.image_bytes
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for row in np.argsort(indices, kind="stable"):  # sorted reads are kinder to the disk
                index = indices[row]
                data = os.pread(fd, n, int(index) * n)
                if len(data) != n:
                    raise DataError(f"{self.path}: cache file is shorter than its description; "
                                    "delete it to rebuild")
                out[row] = np.frombuffer(data, np.uint8).reshape(self.size, self.size, 3)
        finally:
            os.close(fd)
        return out


def cache_key(source: Source, size: int, crop: int, min_side: int = 0) -> str:
    text = json.dumps({"v": CACHE_VERSION, "source": source.fingerprint(), "size": size,
                       "crop": crop, "min_side": min_side}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def open_cache(source: Source, size: int, crop: int, root: str | Path | None = None,
               progress: bool | None = None, min_side: int = 0) -> ImageCache:
    """The finished cache for (source, size, crop), building it first if needed.

    Images whose short side is below `min_side` pixels are skipped (0 keeps all).
    `progress` shows a bar while building (default: in a terminal or notebook).
    """
    if progress is None:
        progress = show_progress()
    root = Path(root) if root else default_cache_root()
    key = cache_key(source, size, crop, min_side)
    data_path, meta_path = root / f"{key}.u8", root / f"{key}.json"
    cache = _load_finished(data_path, meta_path, size)
    if cache is not None:
        skipped = len(cache.meta.get("skipped", []))
        log.info("using cached %s: %d images%s", source.spec, cache.count,
                 f" (skipped {skipped} unusable files when built)" if skipped else "")
        return cache
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(root, f"{key}.u8.partial-*")
    _remove_superseded(root, source, size, crop)
    return _build(source, size, crop, min_side, data_path, meta_path, progress)


def _load_finished(data_path: Path, meta_path: Path, size: int) -> ImageCache | None:
    try:
        meta = json.loads(meta_path.read_text())
        count = int(meta["count"])
        if data_path.stat().st_size != count * size * size * 3 or meta["size"] != size:
            return None
    except (OSError, ValueError, KeyError):
        return None
    return ImageCache(data_path, count, size, meta)


def _remove_superseded(root: Path, source: Source, size: int, crop: int) -> None:
    """Free the disk an older-format cache of the same source, size and crop takes (CelebA at
    128x128: about 10 GB); it is about to be rebuilt in the current format."""
    for meta_path in root.glob("*.json"):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if (isinstance(meta, dict) and meta.get("version", 1) < CACHE_VERSION
                and (meta.get("source"), meta.get("size"), meta.get("crop")) == (source.spec, size, crop)):
            data = meta_path.with_suffix(".u8")
            mib = data.stat().st_size / 2**20 if data.exists() else 0
            data.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            log.info("removed %s, an older-format cache of %s (%.0f MiB); building the new one",
                     data.name, source.spec, mib)


def _build(source: Source, size: int, crop: int, min_side: int, data_path: Path,
           meta_path: Path, progress: bool) -> ImageCache:
    partial = data_path.with_name(f"{data_path.name}.partial-{os.getpid()}")
    total = len(source.entries)
    done = np.zeros(total, bool)
    skipped: list[list[str]] = []
    count = 0
    bar = tqdm(total=total, desc=f"decoding {Path(source.spec).name or source.spec}",
               unit="img", disable=not progress, leave=False)

    def skip(index, reason):
        name = source.display_name(source.entries[index])
        skipped.append([name, reason[:200]])
        log.warning("skipping %s: %s", name, reason[:200])

    def too_small(index, side):
        if side >= min_side:
            return False
        skip(index, f"too small ({side} px short side, under {min_side} px; "
                    "--min-image-side 0 keeps such images)")
        return True

    try:
        with open(partial, "wb") as out:
            for index, image, side in _decoder()(source, size, crop):
                done[index] = True
                if not too_small(index, side):
                    out.write(image.tobytes())
                    count += 1
                bar.update(1)
            for index in np.flatnonzero(~done):  # TensorFlow could not decode these
                try:
                    image, side = decode_one_with_pillow(source.read(source.entries[index]), size, crop)
                except Exception as e:  # any failure: skip the file, never stop training
                    skip(index, _reason(e))
                else:
                    if not too_small(index, side):
                        out.write(image.tobytes())
                        count += 1
                bar.update(1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, data_path)
    finally:
        bar.close()
        partial.unlink(missing_ok=True)
        source.close()
    if skipped:
        shown = ", ".join(Path(name).name for name, _ in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        log.warning("skipped %d of %d files: %s%s", len(skipped), total, shown, more)
    meta = {"version": CACHE_VERSION, "source": source.spec, "size": size, "crop": crop,
            "min_side": min_side, "count": count, "total": total, "skipped": skipped}
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    return ImageCache(data_path, count, size, meta)


def _reason(error: Exception) -> str:
    """A short, file-independent reason for a skipped image."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image, or a format Pillow cannot read"
    if isinstance(error, FileNotFoundError):
        return "missing (a broken link, or deleted after the folder was listed)"
    if isinstance(error, OSError) and error.strerror:
        return f"cannot be read ({error.strerror.lower()})"
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__


def _decoder():
    """TensorFlow's decoders on its backend (fastest there); Pillow's on JAX and PyTorch,
    whose runtimes may have no TensorFlow (Colab's TPU) or must not load it next to torch."""
    import keras  # lazy: see _decode_all_with_tensorflow

    return _decode_all_with_tensorflow if keras.backend.backend() == "tensorflow" else _decode_all_with_pillow


def _decode_all_with_pillow(source: Source, size: int, crop: int, threads: int | None = None):
    """Yield (entry index, uint8 image, original short side) in order, decoded by Pillow in
    threads; entries that fail are left out (the caller retries them to record why)."""
    def decode(index):
        try:
            return decode_one_with_pillow(source.read(source.entries[index]), size, crop)
        except Exception:  # noqa: BLE001 - named by the caller's retry
            return None

    threads = threads or min(8, (os.cpu_count() or 1) + 1)
    chunk = 256  # bounded memory: never more than a chunk of decoded images in flight
    with ThreadPoolExecutor(threads) as pool:
        for start in range(0, len(source.entries), chunk):
            indices = range(start, min(start + chunk, len(source.entries)))
            for index, result in zip(indices, pool.map(decode, indices)):
                if result is not None:
                    yield index, result[0], result[1]


def _decode_all_with_tensorflow(source: Source, size: int, crop: int):
    """Yield (entry index, uint8 image, original short side) for every entry TensorFlow
    decodes; others are left out (Pillow retries them)."""
    import tensorflow as tf  # lazy here and below: seconds to import, only needed to build

    indices = tf.data.Dataset.range(len(source.entries))
    if not source.reads_files:  # archive members, parquet rows
        def entry_bytes():
            for i, entry in enumerate(source.entries):
                try:
                    yield i, source.read(entry)
                except Exception:  # unreadable member: Pillow's pass names it
                    yield i, b""
        data = tf.data.Dataset.from_generator(
            entry_bytes, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.string)))
    else:
        paths = tf.constant(source.entries)
        data = indices.map(lambda i: (i, tf.io.read_file(paths[i])),
                           num_parallel_calls=tf.data.AUTOTUNE)
    decoded = (data.map(lambda i, b: (i, *tf_decode(b, size, crop)),
                        num_parallel_calls=tf.data.AUTOTUNE)
               .ignore_errors()
               .prefetch(64))
    for index, image, side in decoded.as_numpy_iterator():
        yield int(index), image, int(side)


def _crop_window(height, width, crop):
    """A centred square: `crop` px (or the short side, if crop is 0 or larger)."""
    import tensorflow as tf  # lazy: see _decode_all_with_tensorflow

    side = tf.minimum(height, width)
    if crop > 0:
        side = tf.minimum(side, crop)
    return (height - side) // 2, (width - side) // 2, side


def tf_decode(data, size: int, crop: int):
    """Encoded bytes -> (uint8 (size, size, 3), the original short side): centre crop, then an
    antialiased resize."""
    import tensorflow as tf  # lazy: see _decode_all_with_tensorflow

    def jpeg():
        shape = tf.io.extract_jpeg_shape(data)
        top, left, side = _crop_window(shape[0], shape[1], crop)
        image = tf.io.decode_and_crop_jpeg(data, tf.stack([top, left, side, side]), channels=3)
        return image, tf.minimum(shape[0], shape[1])

    def other():
        image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
        shape = tf.shape(image)
        top, left, side = _crop_window(shape[0], shape[1], crop)
        return image[top:top + side, left:left + side], tf.minimum(shape[0], shape[1])

    image, short_side = tf.cond(tf.io.is_jpeg(data), jpeg, other)
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), short_side


def decode_one_with_pillow(data: bytes, size: int, crop: int) -> tuple[np.ndarray, int]:
    """The same as `tf_decode` with Pillow: the decoder on JAX and PyTorch, and for what
    TensorFlow cannot read (CMYK, 16-bit, ...)."""
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
