"""Image sources: a folder (recursive), a .zip / .tar(.gz) archive, a glob, parquet files,
or a dataset on the Hugging Face Hub (`hf:ORG/NAME`, its parquet files).

A source lists its image entries once and reads each one's bytes on demand,
so archives and parquet files are used as they are, without extracting them
first.  CelebA's usual layouts are recognised, with its official split when the
partition list is present (parquet: files named by split, as the Hub names them).
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import hashlib
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dcgan.data.archives import BROKEN_ARCHIVE, Archive
from dcgan.config import SPLITS
from dcgan.errors import DataError
from dcgan.data.hub import hub_dataset, split_patterns

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
PARTITION_CODES = {"train": "0", "valid": "1", "test": "2"}  # list_eval_partition's column
CELEBA_SIZE = (178, 218)  # width, height of aligned CelebA images (how a parquet copy is recognised)
HUB_PREFIX = "hf:"


def is_image_name(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return PurePosixPath(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS


def is_archive(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


@dataclass
class Source:
    """A list of image entries and a way to read each one's bytes."""

    spec: str
    kind: str  # "folder", "archive", "glob" or "parquet"
    entries: list[str]
    root: Path | None = None  # folder root, or the archive file
    is_celeba: bool = False
    partition: str | None = None  # CelebA's list_eval_partition file (a path or archive member)
    _archive: object = field(default=None, repr=False)

    @property
    def reads_files(self) -> bool:
        """Each entry is a file path (a folder or a glob), rather than a part of a container."""
        return self.kind in ("folder", "glob")

    def read(self, entry: str) -> bytes:
        if self.kind == "archive":
            return self._open_archive().read(entry)
        if self.kind == "parquet":
            return self._archive.read(entry)
        return Path(entry).read_bytes()

    def _open_archive(self):
        if self._archive is None:
            self._archive = Archive(self.root)
        return self._archive

    def close(self) -> None:
        if self._archive is not None and self.kind != "parquet":
            self._archive.close()
            self._archive = None

    def fingerprint(self) -> str:
        """Changes whenever the listed files, their sizes or times change (keys the cache)."""
        digest = hashlib.sha256(f"{self.kind}\0{self.spec}\0".encode())
        if self.kind in ("archive", "parquet"):
            containers = self._archive.files if self.kind == "parquet" else [Path(self.root)]
            for container in containers:
                stat = container.stat()
                digest.update(f"{container.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
            digest.update("\n".join(self.entries).encode())
        else:
            for entry in self.entries:
                try:
                    stat = os.stat(entry)
                except OSError:  # a broken link, or gone since listing: the build skips and names it
                    digest.update(f"{entry}\0missing\n".encode())
                else:
                    digest.update(f"{entry}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    def display_name(self, entry: str) -> str:
        if self.kind == "parquet":  # "hf:org/name:train-00000-of-00003.parquet#17"
            file, _, row = entry.rpartition("#")
            name = Path(file).name
            return f"{self.spec}#{row}" if Path(self.spec).name == name else f"{self.spec}:{name}#{row}"
        return f"{self.root}:{entry}" if self.kind == "archive" else entry


def open_source(spec: str, split: str = "all") -> Source:
    """Resolve `--data` to a Source; one clear DataError if nothing usable is there."""
    if split not in SPLITS:
        raise DataError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
    if spec.startswith(HUB_PREFIX):
        return parquet_source(spec, parquet_files(hub_dataset(spec[len(HUB_PREFIX):], split),
                                                  split, spec))
    path = Path(spec)
    if path.is_dir() and (not any(_image_files(path)) and parquet_files(path, "all", spec, False)):
        return parquet_source(spec, parquet_files(path, split, spec))
    if path.is_dir():
        source = _folder_source(spec, path)
    elif path.is_file():
        if path.suffix.lower() == ".parquet":
            return parquet_source(spec, [path])
        if not is_archive(path):
            raise DataError(f"{spec}: {'a web page (HTML) ' if looks_like_html(path) else ''}"
                            "not a folder, a parquet file or a .zip/.tar archive of images")
        source = _archive_source(spec, path)
    elif any(ch in spec for ch in "*?["):
        # Broken links stay in the list, so the build names them like other unreadable files.
        matches = sorted(p for p in glob.glob(spec, recursive=True)
                         if not os.path.isdir(p) and is_image_name(os.path.basename(p)))
        source = Source(spec, "glob", matches)
    else:
        raise DataError(f"{spec}: no such file or folder; give --data demo, a folder, "
                        "an archive, a glob, parquet files or hf:ORG/NAME")
    if not source.entries:
        raise DataError(f"{spec}: no images found (looked for "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))}, recursively)")
    if split != "all":
        source.entries = _apply_split(source, split)
    return source


def _image_files(root: Path):
    """The image files under `root`, lazily (to ask whether there are any)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        yield from (n for n in filenames if is_image_name(n))


def looks_like_html(path: str | os.PathLike) -> bool:
    """A file that is really a web page: what Google Drive (quota exceeded) and many servers
    send in place of the file asked for."""
    try:
        with open(path, "rb") as f:
            head = f.read(512).lstrip().lower()
    except OSError:
        return False
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")) or b"<html" in head[:200]


def parquet_files(root: Path, split: str, spec: str, required: bool = True) -> list[Path]:
    """The parquet files under `root` for `split`, sorted; DataError if none (and `required`)."""
    found = sorted(p for p in Path(root).rglob("*.parquet")
                   if not any(part.startswith(".") for part in p.relative_to(root).parts))
    relative = {p: p.relative_to(root).as_posix() for p in found}
    chosen = [p for p in found if any(fnmatch.fnmatch(relative[p], pattern)
                                      for pattern in split_patterns(split))]
    if required and not chosen:
        detail = (f" for split={split} (its files: {', '.join(list(relative.values())[:4])})"
                  if found else "")
        raise DataError(f"{spec}: no parquet files{detail}; use split=all or another source")
    return chosen


class _ParquetRows:
    """Reads one image's bytes from parquet files by "FILE#ROW", a row group at a time (the
    group just read is kept: the cache build reads in order).  Thread-safe."""

    def __init__(self, files: list[Path], columns: list[str]):
        import pyarrow.parquet as pq  # lazy: only parquet sources need it

        self.files = files
        self.columns = dict(zip(map(str, files), columns))
        self.parquet = {str(f): pq.ParquetFile(f) for f in files}
        self._group_file, self._group_rows, self._group = None, range(0), []
        self._lock = threading.Lock()

    def read(self, entry: str) -> bytes:
        name, _, row_text = entry.rpartition("#")
        row = int(row_text)
        with self._lock:
            if self._group_file != name or row not in self._group_rows:
                self._load(name, row)
            value = self._group[row - self._group_rows.start]
        if isinstance(value, dict):
            value = value.get("bytes")
        if not value:
            raise ValueError("empty image cell (no bytes in this row)")
        return bytes(value)

    def _load(self, name: str, row: int) -> None:
        parquet = self.parquet[name]
        start = 0
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if row < start + rows:
                table = parquet.read_row_group(group, columns=[self.columns[name]])
                self._group = table.column(0).to_pylist()
                self._group_file, self._group_rows = name, range(start, start + rows)
                return
            start += rows
        raise IndexError(f"row {row} is past the end of {name}")


def parquet_source(spec: str, files: list[Path]) -> Source:
    """A Source over the image column of parquet `files` (one entry per row, "FILE#ROW")."""
    try:
        import pyarrow.parquet as pq  # lazy: only parquet sources need it
    except ImportError:
        raise DataError(f"{spec}: reading parquet needs pyarrow: pip install pyarrow "
                        "(or pip install 'dcgan[hf]')") from None
    entries, columns = [], []
    for path in files:
        try:
            parquet = pq.ParquetFile(path)
            rows = parquet.metadata.num_rows
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise DataError(f"{path}: not a readable parquet file ({_first_line(e)}); "
                            "download it again") from None
        columns.append(image_column(parquet.schema_arrow, path))
        entries.extend(f"{path}#{row}" for row in range(rows))
    source = Source(spec, "parquet", entries, root=Path(files[0]).parent if files else None)
    source._archive = _ParquetRows(list(files), columns)
    if not entries:
        raise DataError(f"{spec}: the parquet files hold no rows")
    source.is_celeba = _first_image_size(source) == CELEBA_SIZE
    return source


def image_column(schema, path) -> str:
    """The column holding encoded images: a {bytes, path} struct (as `datasets` writes
    images) or a binary column; DataError naming the columns there are otherwise."""
    import pyarrow as pa  # lazy: only parquet sources need it

    for field_ in schema:
        kind = field_.type
        if pa.types.is_struct(kind) and any(
                kind.field(i).name == "bytes" and pa.types.is_binary(kind.field(i).type)
                or kind.field(i).name == "bytes" and pa.types.is_large_binary(kind.field(i).type)
                for i in range(kind.num_fields)):
            return field_.name
    for field_ in schema:
        if pa.types.is_binary(field_.type) or pa.types.is_large_binary(field_.type):
            return field_.name
    names = ", ".join(f"{f.name} ({f.type})" for f in schema) or "none"
    raise DataError(f"{path}: no image column (a binary column or a {{bytes, path}} struct); "
                    f"its columns: {names[:200]}")


def _first_image_size(source: Source) -> tuple[int, int] | None:
    """The (width, height) of the first readable image (reads its header only)."""
    from PIL import Image  # lazy: Pillow's import is cheap, but only this needs it here

    for entry in source.entries[:8]:
        try:
            with Image.open(io.BytesIO(source.read(entry))) as image:
                return image.size
        except Exception:  # noqa: BLE001 - a broken first row: try the next
            continue
    return None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160]}" if text else type(error).__name__


def _folder_source(spec: str, root: Path) -> Source:
    entries, partitions = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        entries.extend(str(Path(dirpath) / n) for n in sorted(filenames) if is_image_name(n))
        partitions.extend(str(Path(dirpath) / n) for n in filenames if _is_partition_file(n))
    # CelebA layouts (Kaggle's twice-nested folder, torchvision's, the official zip's)
    # all keep the aligned images in a folder named img_align_celeba.
    celeba = bool(entries) and all(f"img_align_celeba{os.sep}" in e for e in entries)
    return Source(spec, "folder", entries, root=root, is_celeba=celeba,
                  partition=min(partitions) if partitions else None)


def _archive_source(spec: str, path: Path) -> Source:
    try:
        with Archive(path) as archive:
            # Links stay in the list: the build names them if they lead nowhere.
            names = [m.name for m in archive.members() if m.kind in ("file", "link")]
    except (*BROKEN_ARCHIVE, OSError) as e:
        if looks_like_html(path):
            raise DataError(f"{spec}: a web page (HTML), not an archive: the server sent an error "
                            "or quota page in its place (Google Drive does this); download it "
                            "again, or use --data hf:nielsr/CelebA-faces") from None
        raise DataError(f"{spec}: not a readable archive ({e})") from None
    entries = sorted(n for n in names if is_image_name(n))
    celeba = bool(entries) and all("img_align_celeba/" in n for n in entries)
    partitions = sorted(n for n in names if _is_partition_file(n))
    return Source(spec, "archive", entries, root=path, is_celeba=celeba,
                  partition=partitions[0] if partitions else None)


def _is_partition_file(name: str) -> bool:
    return fnmatch.fnmatch(PurePosixPath(name).name, "list_eval_partition.*")


def _apply_split(source: Source, split: str) -> list[str]:
    """Keep the entries of CelebA's official split `split` (list_eval_partition.csv / .txt)."""
    if source.partition is None:
        raise DataError(f"{source.spec}: split={split} needs list_eval_partition.csv (or .txt) "
                        "beside the images; use split=all")
    text = source.read(source.partition).decode("utf-8", "replace")
    wanted = PARTITION_CODES[split]
    keep = set()
    rows = csv.reader(io.StringIO(text)) if "," in text.splitlines()[0] else (
        line.split() for line in text.splitlines())
    for row in rows:
        if len(row) >= 2 and row[1].strip() == wanted:
            keep.add(row[0].strip())
    return [e for e in source.entries if PurePosixPath(e.replace("\\", "/")).name in keep]
