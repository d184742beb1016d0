"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path`.

    On error the temporary file is removed and `path` is left as it was.
    The temporary name keeps the final suffix, since Keras picks the format
    from it (`.keras`, `.weights.h5`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file 0600; give it the mode a plain open() would have given it
        os.chmod(tmp, _plain_open_mode(path))
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _plain_open_mode(path: Path) -> int:
    """The permission bits `open(path, "w")` would leave: an existing file keeps its own,
    a new one gets 0666 less the process's umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (no race with other
    threads creating files); else set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(folder: str | os.PathLike, files: bool = True) -> None:
    """fsync every file directly in `folder` (if `files`) and the folder itself."""
    folder = Path(folder)
    if files:
        for item in folder.iterdir():
            if item.is_file():
                with open(item, "rb") as f:
                    os.fsync(f.fileno())
    _fsync_dir(folder)


def remove_stale_partials(folder: str | os.PathLike, pattern: str, own: bool = True) -> None:
    """Remove what interrupted writes left behind: entries matching `pattern` whose name
    ends in `-PID` of a process that is gone (killed mid-write), or of this one (an earlier
    write of ours that failed; callers never run this while they are writing).  `own=False`
    spares this process's: another of its threads may be writing one now (downloads)."""
    for partial in Path(folder).glob(pattern):
        pid_text = partial.name.rsplit("-", 1)[-1]
        pid = int(pid_text) if pid_text.isdigit() else -1
        if (own and pid == os.getpid()) or (pid != os.getpid() and not _alive(pid)):
            if partial.is_dir() and not partial.is_symlink():
                shutil.rmtree(partial, ignore_errors=True)
            else:
                partial.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
