"""Image sources: a folder (recursive), a .zip / .tar(.gz) archive, or a glob.

A source lists its image entries once and reads each one's bytes on demand,
so archives are used as they are, without extracting them first.  CelebA's
usual layouts are recognised, with its official split when the partition
list is present.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import hashlib
import io
import os
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dcgan.config import SPLITS
from dcgan.errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
PARTITION_CODES = {"train": "0", "valid": "1", "test": "2"}  # list_eval_partition's column
CELEBA_SIZE = (178, 218)  # width, height of aligned CelebA images


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
    kind: str  # "folder", "archive" or "glob"
    entries: list[str]
    root: Path | None = None  # folder root, or the archive file
    is_celeba: bool = False
    partition: str | None = None  # CelebA's list_eval_partition file (a path or archive member)
    _archive: object = field(default=None, repr=False)

    def read(self, entry: str) -> bytes:
        if self.kind == "archive":
            return _archive_read(self._open_archive(), entry)
        return Path(entry).read_bytes()

    def _open_archive(self):
        if self._archive is None:
            if str(self.root).lower().endswith(".zip"):
                self._archive = zipfile.ZipFile(self.root)
            else:
                self._archive = tarfile.open(self.root)
        return self._archive

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def fingerprint(self) -> str:
        """Changes whenever the listed files, their sizes or times change (keys the cache)."""
        digest = hashlib.sha256(f"{self.kind}\0{self.spec}\0".encode())
        if self.kind == "archive":
            stat = Path(self.root).stat()
            digest.update(f"{Path(self.root).resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
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
        return f"{self.root}:{entry}" if self.kind == "archive" else entry


def open_source(spec: str, split: str = "all") -> Source:
    """Resolve `--data` to a Source; one clear DataError if nothing usable is there."""
    if split not in SPLITS:
        raise DataError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
    path = Path(spec)
    if path.is_dir():
        source = _folder_source(spec, path)
    elif path.is_file():
        if not is_archive(path):
            raise DataError(f"{spec}: not a folder or a .zip/.tar archive of images")
        source = _archive_source(spec, path)
    elif any(ch in spec for ch in "*?["):
        # Broken links stay in the list, so the build names them like other unreadable files.
        matches = sorted(p for p in glob.glob(spec, recursive=True)
                         if not os.path.isdir(p) and is_image_name(os.path.basename(p)))
        source = Source(spec, "glob", matches)
    else:
        raise DataError(f"{spec}: no such file or folder; give --data demo, a folder, "
                        "an archive or a glob of images")
    if not source.entries:
        raise DataError(f"{spec}: no images found (looked for "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))}, recursively)")
    if split != "all":
        source.entries = _apply_split(source, split)
    return source


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
        if str(path).lower().endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                names = [i.filename for i in z.infolist() if not i.is_dir()]
        else:
            with tarfile.open(path) as t:
                # Links stay in the list: the build names them if they lead nowhere.
                names = [m.name for m in t.getmembers() if m.isfile() or m.issym() or m.islnk()]
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
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


def _archive_read(archive, name: str) -> bytes:
    if isinstance(archive, zipfile.ZipFile):
        return archive.read(name)
    member = archive.extractfile(name)
    if member is None:
        raise OSError(f"{name}: not a regular file")
    return member.read()


def celeba_crop(image_size: int) -> int:
    """The usual CelebA face crop: 108 px for up to 64x64, 140 px above."""
    return 108 if image_size <= 64 else 140
