"""Decode a Source once into a uint8 file cache, then feed training from that file.

Build: entries -> dcgan.data.decode (centre square crop -> resize -> uint8; TensorFlow's
decoders on its backend, Pillow's for the rest) -> written image after image to
`<key>.u8.partial-<pid>`.  Entries that cannot be decoded (or are missing, or are
broken links), and images whose short side is below `min_side`, are skipped, each
named once and counted in one summary line.  The finished file is fsynced
and renamed into place, and only then is `<key>.json` (its description)
written: a run killed mid-build leaves only a partial file, removed by the
next build.  A cache in an older format is removed when its successor is built.

Read: batches of shuffled indices (dcgan.data.pipeline) -> `os.pread` of each image.
Host memory stays at a few batches whatever the data set size (the file
goes through the OS page cache, not the process), and every epoch is a full
random shuffle, which a `tf.data` cache + shuffle buffer cannot give
without holding the buffer in RAM.

The key hashes the source's file list (names, sizes, times), the crop, the
image size, the small-image floor and the decoder that makes the pixels (TensorFlow's and
Pillow's resizes differ a little), so a change to any of them builds a new cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dcgan.env import show_progress
from dcgan.errors import DataError
from dcgan.io import atomic_write_text, remove_stale_partials
from dcgan.data.decode import decode_all, decoder_name
from dcgan.data.sources import Source

CACHE_VERSION = 3  # 2: images below the min_side floor are skipped; 3: the decoder in the key
log = logging.getLogger("dcgan.data.pipeline")


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
                       "crop": crop, "min_side": min_side, "decoder": decoder_name()}, sort_keys=True)
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
            for index, image, side in decode_all(source, size, crop):
                if image is None:
                    skip(index, side)  # side: why it could not be decoded
                elif not too_small(index, side):
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
            "min_side": min_side, "decoder": decoder_name(), "count": count, "total": total,
            "skipped": skipped}
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    return ImageCache(data_path, count, size, meta)
