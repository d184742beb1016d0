"""Results to take home: one zip of a run's generators, grids, GIF, log and config.

    python -m dcgan export runs/faces --out faces.zip

What goes in is `export_members`: the generators as `.keras` files (the last ones and, when kept,
the best with its `best.json`), every sample grid and the fixed latents they come from, the
progress GIF, the loss plot, `log.csv`, `config.json`, `environment.json` and any scores; never
the resumable checkpoints or the discriminator (big, and only for training on).  The zip is
written beside its final name and renamed into place, so no reader sees half of one.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from dcgan.errors import DcganError
from dcgan.io import atomic_path
from dcgan.outputs.folder import RunPaths


def export_members(run: str | Path) -> list[tuple[Path, str]]:
    """(file, name in the zip) for every file of `run` that `export_run` packs, in zip order."""
    paths = RunPaths(run)
    if not paths.config.is_file():
        raise DcganError(f"{run}: not a run folder (no config.json); give the folder a training "
                         "run wrote (its --out)")
    candidates = [paths.config, paths.environment, paths.log, paths.losses_plot,
                  paths.progress_gif, paths.metrics, paths.eval,
                  paths.export("generator_ema"), paths.export("generator"),
                  paths.best / "generator_ema.keras", paths.best / "generator.keras",
                  paths.best_record, paths.latents, paths.real_grid, *paths.epoch_grids(),
                  paths.faces, paths.walk, paths.directions, paths.attribute_classifier]
    members = [(file, file.relative_to(paths.root).as_posix()) for file in candidates if file.is_file()]
    if not any(name.endswith(".keras") for _, name in members):
        raise DcganError(f"{run}: no generator saved yet (a run writes checkpoints/generator.keras "
                         "after its first epoch); train at least one epoch, then export")
    return members


def export_run(run: str | Path, out: str | Path | None = None) -> Path:
    """Zip `run`'s results into `out` (default: RUN/RUN_NAME-results.zip); return its path."""
    members = export_members(run)
    out = Path(out) if out is not None else Path(run) / f"{Path(run).resolve().name}-results.zip"
    if out.suffix.lower() != ".zip":
        raise DcganError(f"--out {out}: must be a .zip file")
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for file, name in members:
            # .keras files and images are compressed already; storing them saves time, not space
            kind = zipfile.ZIP_STORED if file.suffix in (".keras", ".png", ".gif") else zipfile.ZIP_DEFLATED
            archive.write(file, f"{Path(run).resolve().name}/{name}", compress_type=kind)
    return out
