"""Datasets from the Hugging Face Hub (`--data hf:ORG/NAME`): their parquet files, downloaded
with `huggingface_hub` into its cache (resumable, no token for public datasets).

CelebA without a Kaggle account: `hf:nielsr/CelebA-faces` holds the same 202,599 aligned
images as three parquet files (1.39 GB).  `HF_ENDPOINT` points the client at another server
(the tests start a stand-in on 127.0.0.1).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from dcgan.errors import DataError

log = logging.getLogger("dcgan.data.pipeline")
CELEBA_HUB_ID = "nielsr/CelebA-faces"  # aligned CelebA, train only, one image column
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
# How the Hub names a split's parquet files: data/train-00000-of-00003.parquet, valid/0.parquet ...
SPLIT_FILE_NAMES = {"train": ("train",), "valid": ("valid", "validation"), "test": ("test",)}


def split_patterns(split: str) -> list[str]:
    """fnmatch patterns of a split's parquet files (every parquet file for "all")."""
    if split == "all":
        return ["*.parquet"]
    return [pattern for name in SPLIT_FILE_NAMES[split]
            for pattern in (f"{name}[-_.]*.parquet", f"*/{name}[-_.]*.parquet",
                            f"{name}/*.parquet", f"*/{name}/*.parquet")]


def hub_dataset(repo_id: str, split: str = "all") -> Path:
    """The local folder holding dataset `repo_id`'s parquet files for `split` (downloaded on
    first use; later calls find them in the cache).  One-line DataError otherwise."""
    where = f"hf:{repo_id}"
    if not _REPO_ID.match(repo_id):
        raise DataError(f"{where}: expected hf:ORG/NAME, e.g. hf:{CELEBA_HUB_ID}")
    try:
        import huggingface_hub  # lazy: only hf: sources need it (Colab has it)
        from huggingface_hub import errors
    except ImportError:
        raise DataError(f"{where}: needs huggingface_hub and pyarrow: pip install huggingface_hub "
                        "pyarrow (or pip install 'dcgan[hf]')") from None
    log.info("fetching %s from the Hugging Face Hub (parquet files%s; kept in its cache)",
             where, "" if split == "all" else f" of split {split}")
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, repo_type="dataset", allow_patterns=split_patterns(split),
            # read now: the client reads these once, at import
            endpoint=os.environ.get("HF_ENDPOINT"), cache_dir=_hub_cache())
    except errors.GatedRepoError:
        raise DataError(f"{where} is gated: accept its terms on huggingface.co/datasets/"
                        f"{repo_id}, then log in (huggingface_hub.login() or HF_TOKEN)") from None
    except errors.RepositoryNotFoundError:
        raise DataError(f"{where}: no such public dataset on the Hugging Face Hub; check the "
                        f"name (huggingface.co/datasets/{repo_id})") from None
    except errors.RevisionNotFoundError:
        raise DataError(f"{where}: the dataset has no main revision") from None
    except Exception as e:  # connection refused, timeouts, 5xx: the client wraps them variously
        detail = (str(e).strip().splitlines() or [""])[0][:160]
        raise DataError(f"{where}: the Hugging Face Hub could not be reached ("
                        f"{type(e).__name__}{': ' + detail if detail else ''}); check the "
                        "connection and run again (finished files are kept)") from None
    return Path(folder)


def _hub_cache() -> str | None:
    """huggingface_hub's cache folder as the environment says now (None: its default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None
