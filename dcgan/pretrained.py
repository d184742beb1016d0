"""Released generators, ready to load: a name from `RELEASED` or any http(s) URL of a `.keras`
generator, downloaded once into the cache (`$DCGAN_CACHE/pretrained`, else
~/.cache/dcgan/pretrained), sha256-checked, and loaded with `safe_mode=True` (no code runs).

    python -m dcgan generate --checkpoint https://.../generator.keras#sha256=HEX
    python -m dcgan train --preset faces64 --init-from https://.../generator.keras#sha256=HEX
    nb.load_pretrained("https://.../generator.keras#sha256=HEX")

A URL's checksum comes after `#sha256=` (pip's convention) or from `sha256=`; a URL without one
is downloaded once and used as it is (a warning says it was not checked).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from dcgan.errors import CheckpointError

log = logging.getLogger("dcgan")

# name -> (URL, sha256) of generators this project has released.  None yet: a generator
# trained on CelebA needs a GPU run that has not been made (docs: "Pretrained generators").
RELEASED: dict[str, tuple[str, str]] = {}


def is_remote(spec: str | Path) -> bool:
    return str(spec).startswith(("http://", "https://")) or str(spec) in RELEASED


def pretrained_root() -> Path:
    from dcgan.cache import default_cache_root

    return default_cache_root() / "pretrained"


def fetch_generator(spec: str, sha256: str | None = None, progress: bool = False) -> Path:
    """The local copy of a released name or a URL (downloaded on first use); see the module."""
    from dcgan.download import fetch
    from dcgan.errors import DataError

    if spec in RELEASED:
        url, sha256 = RELEASED[spec]
    elif str(spec).startswith(("http://", "https://")):
        url, _, fragment = str(spec).partition("#")
        if fragment.startswith("sha256="):
            sha256 = sha256 or fragment.removeprefix("sha256=")
    else:
        known = ", ".join(RELEASED) or "none released yet"
        raise CheckpointError(f"{spec}: not a released generator ({known}) nor an http(s) URL of a "
                              ".keras file")
    name = PurePosixPath(urlparse(url).path).name
    if not name.endswith(".keras"):
        raise CheckpointError(f"{url}: expected the URL of a .keras generator file")
    # one folder per URL: two releases may both be called generator.keras
    folder = pretrained_root() / hashlib.sha256(url.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = fetch(url, folder, sha256=sha256, progress=progress)
    except DataError as e:
        raise CheckpointError(str(e)) from None
    if not sha256:
        log.warning("%s: no sha256 given (add #sha256=HEX to the URL): used unchecked", url)
    return path
