"""The run folder: every file name a run writes, and whether to start, resume or restart one.

A run folder (`--out`) holds:

    config.json  environment.json  log.csv  losses.png  progress.gif
    metrics.jsonl  eval.json  tensorboard/
    samples/     latents.npy  real.png  epoch_000.png  epoch_001.png ...
    checkpoints/ ckpt-0001/ ... (complete, resumable state; see dcgan.checkpoint)
                 generator.keras  generator_ema.keras  discriminator.keras
    real_preview.png  faces.png  walk.png     (written by the notebook's cells)

Everything that reads or writes these names takes them from `RunPaths`; `clear()`
removes exactly these and nothing else a user may have put in the folder.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import fields
from pathlib import Path

from dcgan.config import RESUMABLE_CHANGES, Config
from dcgan.errors import CheckpointError

log = logging.getLogger("dcgan.train")

CHECKPOINT_NAME = re.compile(r"^ckpt-(\d{4,})$")
CHECKPOINT_META = "meta.json"  # written last: a checkpoint folder without it is not complete


class RunPaths:
    """Where a run keeps each of its files."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.environment = self.root / "environment.json"
        self.log = self.root / "log.csv"
        self.losses_plot = self.root / "losses.png"
        self.progress_gif = self.root / "progress.gif"
        self.metrics = self.root / "metrics.jsonl"
        self.eval = self.root / "eval.json"
        self.tensorboard = self.root / "tensorboard"
        self.samples = self.root / "samples"
        self.latents = self.samples / "latents.npy"
        self.real_grid = self.samples / "real.png"
        self.checkpoints = self.root / "checkpoints"
        # Notebook cells write these beside the run.
        self.real_preview = self.root / "real_preview.png"
        self.faces = self.root / "faces.png"
        self.walk = self.root / "walk.png"

    def epoch_grid(self, epoch: int) -> Path:
        """The sample grid after `epoch` epochs (0: the untrained generator)."""
        return self.samples / f"epoch_{epoch:03d}.png"

    def epoch_grids(self) -> list[Path]:
        return sorted(self.samples.glob("epoch_*.png"))

    def export(self, network_name: str) -> Path:
        """`generator.keras`, `generator_ema.keras` or `discriminator.keras` (loadable alone)."""
        return self.checkpoints / f"{network_name}.keras"

    def exists(self) -> bool:
        return self.config.exists() or self.checkpoints.exists()

    def clear(self) -> None:
        """Remove every file a run writes here; leave anything else in the folder alone."""
        for folder in (self.samples, self.checkpoints, self.tensorboard):
            shutil.rmtree(folder, ignore_errors=True)
        for file in (self.config, self.environment, self.log, self.losses_plot, self.progress_gif,
                     self.metrics, self.eval, self.real_preview, self.faces, self.walk):
            file.unlink(missing_ok=True)


def checkpoint_folder(checkpoints: str | Path, epoch: int) -> Path:
    return Path(checkpoints) / f"ckpt-{epoch:04d}"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if CHECKPOINT_NAME.match(p.name) and (p / CHECKPOINT_META).is_file()]
    return sorted(found, key=lambda p: int(CHECKPOINT_NAME.match(p.name).group(1)))


def latest_checkpoint(folder: str | Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def resolve_run(config: Config, resume: bool | str = False, overwrite: bool = False,
                allow_config_change: bool = False, apply: bool = True) -> tuple[Config, Path | None]:
    """Decide between a new run and a resumed one; return (config to use, checkpoint or None).

    `resume`: False (a new run; refuses an existing one unless `overwrite`), True
    (continue `config.out_dir`) or "auto" (continue when there is a checkpoint, else
    start: what a notebook re-run wants).  A run stopped before its first checkpoint
    has nothing to lose, so resuming it starts it again.  `apply=False` decides without
    clearing anything (the other processes of a multi-host run; the chief clears).
    """
    paths = RunPaths(config.out_dir)
    if resume and paths.config.exists():
        saved = Config.from_json(paths.config)
        checkpoint = latest_checkpoint(paths.checkpoints)
        if checkpoint is None:
            if apply:
                log.info("%s stopped before its first checkpoint; starting it again from its "
                         "saved config", paths.root)
                paths.clear()
            return config, None
        changed = [f.name for f in fields(Config) if f.name not in RESUMABLE_CHANGES
                   and f.name != "out_dir" and getattr(saved, f.name) != getattr(config, f.name)]
        if changed and not allow_config_change:
            detail = ", ".join(f"{n} ({getattr(saved, n)!r} -> {getattr(config, n)!r})"
                               for n in changed[:4])
            raise CheckpointError(
                f"{paths.root}: the saved run differs in {detail}; drop those flags to resume "
                "as saved, pass --allow-config-change to resume with them, or use a new --out")
        merged = config if changed else saved.replace(
            **{n: getattr(config, n) for n in RESUMABLE_CHANGES}, out_dir=config.out_dir)
        return merged, checkpoint
    if resume is True:
        raise CheckpointError(f"{paths.root}: nothing to resume (no config.json, no complete checkpoint)")
    if paths.exists():
        if not overwrite and resume != "auto":
            raise CheckpointError(f"{paths.root} already holds a run; resume it with --resume, "
                                  "choose another --out, or pass --overwrite to replace it")
        if apply:
            paths.clear()
    return config, None
