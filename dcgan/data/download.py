"""Fetch data sets safely: CelebA through kagglehub, or any zip/tar from a URL or a path.

Every step is atomic: a download goes to its own `.NAME.partial-TOKEN-PID` (two at once never
share one) and is renamed only once its size (and checksum, where given) checks out; an archive
is extracted into a hidden partial folder and moved into place only when complete, merged with
what is already there (nothing of the user's is removed or replaced); a marker file
written last says the folder is complete, so a re-run skips finished work and
an interrupted one never leaves a folder that looks complete.  Archive entries
that would land outside the target (absolute paths, `..`, links) are refused
and reported.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from dcgan.data.archives import BROKEN_ARCHIVE, Archive
from dcgan.errors import DataError
from dcgan.io import atomic_write_text, remove_stale_partials, sha256_file
from dcgan.data.sources import is_archive, looks_like_html

log = logging.getLogger("dcgan.data.pipeline")

CELEBA_KAGGLE_HANDLE = "jessicali9530/celeba-dataset"
MARKER = ".dcgan-complete.json"
CREDENTIALS_HINT = (
    "Kaggle wants a token here: in Colab add the secret KAGGLE_API_TOKEN (the key icon on the "
    "left; kaggle.com > Settings > API > Create New Token), or set KAGGLE_USERNAME and "
    "KAGGLE_KEY; or use --data hf:nielsr/CelebA-faces (no account), or --from a copy of the zip")
CELEBA_LICENCE = (
    "CelebA is for non-commercial research and education only (its release agreement: "
    "mmlab.ie.cuhk.edu.hk/projects/CelebA.html); by using it you accept those terms.")


def download_celeba(to: str | Path, source: str | None = None, sha256: str | None = None,
                    progress: bool = True) -> Path:
    """Put CelebA's aligned images under `to` and return the folder to train from.

    That is `to`, except in Colab, where kagglehub mounts its own read-only copy of
    the data set and the mounted folder is returned (nothing is copied). Skips work
    already done: a re-run returns at once.
    """
    target = Path(to)
    done = _completed(target)
    if done is not None:
        log.info("%s already holds a complete download; nothing to do", target)
        return done
    target.mkdir(parents=True, exist_ok=True)
    record = {"source": source or CELEBA_KAGGLE_HANDLE}
    if source is None:
        located = _kaggle_download(target)
        if located != target:
            record["path"] = str(located)
    else:
        archive = fetch(source, target, sha256=sha256, progress=progress)
        extract_archive(archive, target)
    atomic_write_text(target / MARKER, json.dumps(record) + "\n")
    return Path(record.get("path", target))


def _completed(target: Path) -> Path | None:
    """Where a finished download's images are, per its marker; None if not finished."""
    try:
        record = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    located = Path(record.get("path", target)) if isinstance(record, dict) else target
    return located if located.exists() else None


def fetch(source: str, folder: Path, sha256: str | None = None, progress: bool = True) -> Path:
    """A local archive as it is, or a URL downloaded atomically into `folder`."""
    if not source.startswith(("http://", "https://")):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{source}: no such file; give a .zip/.tar path or an http(s) URL")
        if sha256:
            _check_sha256(path, sha256)
        return path
    name = PurePosixPath(urllib.request.urlparse(source).path).name or "download.zip"
    final = folder / name
    if final.exists() and (not sha256 or sha256_file(final) == sha256.lower()):
        log.info("%s already downloaded", final)
        return final
    # Its own partial name: two downloads of one file at once (two notebooks, two workers)
    # never write into each other's; what a killed one left is removed once its process is gone.
    remove_stale_partials(folder, f".{name}.partial-*", own=False)
    partial = folder / f".{name}.partial-{secrets.token_hex(4)}-{os.getpid()}"
    try:
        with urllib.request.urlopen(source, timeout=60) as response, open(partial, "wb") as out:
            expected = response.headers.get("Content-Length")
            _copy_with_progress(response, out, int(expected) if expected else None, name, progress)
            out.flush()
            os.fsync(out.fileno())
        received = partial.stat().st_size
        if looks_like_html(partial) and not name.lower().endswith((".html", ".htm")):
            raise DataError(f"{source}: the server sent a web page (HTML), not {name}: an error, "
                            "login or quota page (Google Drive sends one when its quota is "
                            "exceeded); try again later or use another copy")
        if expected is not None and received != int(expected):
            raise DataError(f"{source}: download cut short ({received} of {expected} bytes); "
                            "run the command again")
        if sha256:
            _check_sha256(partial, sha256)
        os.replace(partial, final)
    except urllib.error.URLError as e:
        raise DataError(f"{source}: download failed ({getattr(e, 'reason', e)})") from None
    finally:
        partial.unlink(missing_ok=True)
    return final


def extract_archive(archive: Path, target: Path) -> list[str]:
    """Extract `archive` into `target` atomically; return the refused (unsafe) entry names."""
    if not is_archive(archive):
        raise DataError(f"{archive}: not a .zip or .tar(.gz) archive")
    remove_stale_partials(target, f".extract-{archive.name}.partial-*", own=False)  # an interrupted run's
    staging = target / f".extract-{archive.name}.partial-{secrets.token_hex(4)}-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        refused = _extract(archive, staging)
        for item in sorted(staging.iterdir()):
            move_into(item, target / item.name)
    except BROKEN_ARCHIVE as e:
        if looks_like_html(archive):
            raise DataError(f"{archive}: a web page (HTML), not an archive: an error or quota "
                            "page was saved in its place; download it again, or use "
                            "--data hf:nielsr/CelebA-faces") from None
        raise DataError(f"{archive}: broken archive ({e}); download it again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for name in refused:
        log.warning("refused archive entry %s: it would land outside %s", name, target)
    return refused


def safe_member_path(root: Path, name: str) -> Path | None:
    """Where entry `name` goes under `root`, or None if it would land outside it."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        return None
    parts = [p for p in PurePosixPath(clean).parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    path = root.joinpath(*parts)
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return path


def _extract(archive: Path, root: Path) -> list[str]:
    """Write `archive`'s files and folders under `root`; return the names refused (links,
    devices and paths that would land outside `root` are never written)."""
    refused = []
    with Archive(archive) as opened:
        for member in opened.members():
            path = safe_member_path(root, member.name)
            if path is None or member.kind not in ("file", "dir"):
                refused.append(member.name)
                continue
            if member.kind == "dir":
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with opened.open(member.name) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return refused


def _kaggle_download(target: Path) -> Path:
    """Fetch CelebA with kagglehub; return where its files are (`target`, or Colab's mount)."""
    try:
        import kagglehub  # lazy: only the Kaggle path needs it (and its HTTP stack)
    except ImportError:
        raise DataError("kagglehub is not installed: pip install kagglehub "
                        "(or pass --from with a copy of the CelebA zip)") from None
    remove_stale_partials(target, ".kaggle.partial-*", own=False)
    staging = target / f".kaggle.partial-{secrets.token_hex(4)}-{os.getpid()}"
    try:
        located = Path(kagglehub.dataset_download(CELEBA_KAGGLE_HANDLE, output_dir=str(staging)))
    except Exception as e:  # kagglehub raises several types; all become one line
        text = f"{type(e).__name__}: {e}".splitlines()[0]
        if any(word in text.lower() for word in ("401", "403", "unauth", "credential", "forbidden")):
            raise DataError(f"Kaggle refused the CelebA download ({text}). {CREDENTIALS_HINT}") from None
        raise DataError(f"Kaggle download of CelebA failed ({text}); check the connection, "
                        "or pass --from with a copy of the CelebA zip") from None
    if located.resolve() != staging.resolve():
        # Colab: kagglehub ignores output_dir and mounts its cached copy (read-only) instead.
        shutil.rmtree(staging, ignore_errors=True)
        if not located.is_dir():
            raise DataError(f"kagglehub returned {located}, which is not a folder")
        log.info("using kagglehub's copy of CelebA at %s", located)
        return located
    for item in sorted(staging.iterdir()):
        if item.name.startswith("."):
            continue  # kagglehub's own bookkeeping (its .complete marker)
        move_into(item, target / item.name)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def move_into(item: Path, destination: Path) -> None:
    """Move a downloaded file or folder to `destination` without removing anything already
    there: folders are merged, a file already there with the same bytes is kept (a re-run of
    an interrupted move), a different one stops the move with one line naming it."""
    if not destination.exists() and not destination.is_symlink():
        os.replace(item, destination)
    elif item.is_dir() and destination.is_dir() and not destination.is_symlink():
        for child in sorted(item.iterdir()):
            move_into(child, destination / child.name)
    elif item.is_file() and destination.is_file() and sha256_file(item) == sha256_file(destination):
        item.unlink()
    else:
        raise DataError(f"{destination} already exists and differs from the download's copy; "
                        "nothing of yours was replaced: move it away, or choose another --to")


def _copy_with_progress(src, dst, total, name, progress) -> None:
    with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress,
              leave=False) as bar:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
            bar.update(len(chunk))


def _check_sha256(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected.lower():
        raise DataError(f"{path}: sha256 {actual} does not match the expected {expected}; "
                        "the file is damaged or not the one asked for")
