"""One way to read a .zip or a .tar(.gz) archive, whichever it is (sources read members in
place; download extracts them)."""

from __future__ import annotations

import stat
import threading
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# What a damaged, truncated or foreign file raises when opened as an archive.
BROKEN_ARCHIVE = (zipfile.BadZipFile, tarfile.TarError, EOFError)


@dataclass(frozen=True)
class Member:
    name: str
    kind: str  # "file", "dir", "link" (symbolic or hard) or "other" (devices, fifos)


class Archive:
    """An open .zip or .tar(.gz): `members()`, `read(name)`, `open(name)`; a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.is_zip = self.path.name.lower().endswith(".zip")
        self._file = zipfile.ZipFile(self.path) if self.is_zip else tarfile.open(self.path)
        self._lock = threading.Lock()

    def members(self) -> list[Member]:
        if self.is_zip:
            return [Member(i.filename, "dir" if i.is_dir() else
                           "link" if stat.S_ISLNK(i.external_attr >> 16) else "file")
                    for i in self._file.infolist()]
        return [Member(m.name, "file" if m.isfile() else "dir" if m.isdir() else
                       "link" if (m.issym() or m.islnk()) else "other")
                for m in self._file.getmembers()]

    def open(self, name: str):
        """A binary file object of member `name` (OSError if it is not a regular file)."""
        if self.is_zip:
            return self._file.open(name)
        member = self._file.extractfile(name)
        if member is None:
            raise OSError(f"{name}: not a regular file")
        return member

    def read(self, name: str) -> bytes:
        """Member `name`'s bytes; thread-safe (a tar file has one read position)."""
        with self._lock, self.open(name) as member:
            return member.read()

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
