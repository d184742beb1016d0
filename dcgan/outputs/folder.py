"""The run folder: every file name a run writes, and whether to start, resume or restart one.

A run folder (`--out`) holds:

    config.json  environment.json  log.csv  losses.png  progress.gif
    metrics.jsonl  eval.json  tensorboard/
    samples/     latents.npy  real.png  epoch_000.png  epoch_001.png ...
    checkpoints/ ckpt-0001/ ... (complete, resumable state; see dcgan.training.checkpoint)
                 ckpt-0001-000150/  (mid-epoch: 1 epoch and 150 steps; checkpoint_minutes)
                 generator.keras  generator_ema.keras  discriminator.keras
                 best/  generator.keras  generator_ema.keras  best.json  (the best scored)
    real_preview.png  faces.png  walk.png  progress_preview.gif   (the notebook's cells)

Everything that reads or writes these names takes them from `RunPaths`; `clear()`
removes exactly these and nothing else a user may have put in the folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from dcgan.config import RESUMABLE_CHANGES, Config
from dcgan.errors import CheckpointError
from dcgan.io import atomic_path, fsync_tree, remove_stale_partials, sha256_file

log = logging.getLogger("dcgan.train")

# ckpt-EEEE after E whole epochs; ckpt-EEEE-SSSSSS mid-epoch, S steps into epoch E + 1
CHECKPOINT_NAME = re.compile(r"^ckpt-(\d{4,})(?:-(\d{6,}))?$")
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
        self.best = self.checkpoints / "best"  # the best-scoring generators (dcgan.evaluation.scoring)
        self.best_record = self.best / "best.json"
        # Notebook cells write these beside the run.
        self.real_preview = self.root / "real_preview.png"
        self.faces = self.root / "faces.png"
        self.walk = self.root / "walk.png"
        self.directions = self.root / "directions.npz"  # named latent directions (dcgan.editing)
        self.attribute_classifier = self.root / "attributes.keras"  # what labelled them
        self.progress_preview = self.root / "progress_preview.gif"

    def epoch_grid(self, epoch: int) -> Path:
        """The sample grid after `epoch` epochs (0: the untrained generator)."""
        return self.samples / f"epoch_{epoch:03d}.png"

    def step_grid(self, epoch: int, images: int) -> Path:
        """A grid drawn inside epoch `epoch + 1` (sample_minutes, or where `minutes` stopped
        the run), named by the images the generator had seen; it sorts between the grids of
        epochs `epoch` and `epoch + 1`."""
        return self.samples / f"epoch_{epoch:03d}_{images:011d}img.png"

    def epoch_grids(self) -> list[Path]:
        """Every grid, in training order (mid-epoch ones between their epochs')."""
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
                     self.metrics, self.eval, self.real_preview, self.faces, self.walk,
                     self.progress_preview):
            file.unlink(missing_ok=True)


@contextmanager
def new_folder(target: Path):
    """Build a folder's new contents beside it, then swap it in for `target` atomically, the
    same way for checkpoints and for the best generator:

        with new_folder(paths.best) as partial:
            ...write files into partial...

    The files are written to `.NAME.partial-PID` and fsynced; an existing `target` is renamed
    aside to `.NAME.old-PID`, the new folder renamed into place, then the old one removed.  A
    reader sees the old folder or the new one, whole; a kill between the two renames leaves
    the old one aside, which `recover_folder` puts back.  An exception leaves `target` as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        fsync_tree(partial)
        _fault_point("written", target)
        if target.exists():
            os.replace(target, old)
            _fault_point("set aside", target)
        os.replace(partial, target)
        fsync_tree(target.parent, files=False)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _fault_point(stage: str, target: Path) -> None:
    """Where tests stop a save as a kill at that moment would: DCGAN_FAULT_AT=NAME:STAGE ends
    the process (no clean-up runs) at `stage` ("written": the new folder complete beside the
    old one; "set aside": the old one renamed away, the new one not yet in) of saving NAME."""
    if os.environ.get("DCGAN_FAULT_AT") == f"{target.name}:{stage}":
        os._exit(137)


def recover_folder(target: Path) -> bool:
    """Undo what a kill during `new_folder` left: put a set-aside `target` back if its
    replacement never arrived (True then), and remove half-built and leftover copies."""
    target = Path(target)
    if not target.parent.is_dir():
        return False
    remove_stale_partials(target.parent, f".{target.name}.partial-*")
    set_aside = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    restored = bool(set_aside) and not target.exists()
    if restored:
        os.replace(set_aside.pop(), target)
    for leftover in set_aside:
        if not _pid_alive(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
    return restored


def _pid_alive(path: Path) -> bool:
    pid = path.name.rsplit("-", 1)[-1]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except OSError:
        return False
    return True


PARTIAL_PATTERN = ".ckpt-*.partial-*"  # checkpoints being written (new_folder)


def read_meta(checkpoint: Path) -> dict:
    """A checkpoint's meta.json (written last: epoch, step, images, versions, checksums)."""
    return json.loads((Path(checkpoint) / CHECKPOINT_META).read_text())


def prune_checkpoints(folder: str | Path, keep: int) -> None:
    """Keep the last `keep` epoch-end checkpoints (all if 0) and the final one; remove mid-epoch
    ones once a newer checkpoint exists, and what killed saves left behind."""
    folder = Path(folder)
    checkpoints = list_checkpoints(folder)
    whole = [c for c in checkpoints if not checkpoint_position(c)[1]]
    # a mid-epoch checkpoint is a safety net: superseded by any newer checkpoint
    superseded = [c for c in checkpoints[:-1] if checkpoint_position(c)[1]]
    for old in superseded + (whole[:-keep] if keep > 0 else []):
        try:
            if read_meta(old).get("final"):
                continue
        except (OSError, ValueError):
            pass
        shutil.rmtree(old, ignore_errors=True)
    remove_stale_partials(folder, PARTIAL_PATTERN)


def write_exports(paths: RunPaths, networks) -> None:
    """`checkpoints/NAME.keras` for each network, in float32 whatever the training precision,
    each written atomically (what generate, the explorer and export read)."""
    from dcgan.models.precision import float32_copy  # lazy: Keras

    for network in networks:
        if network is not None:
            with atomic_path(paths.export(network.name)) as tmp:
                float32_copy(network).save(tmp)


def recover_checkpoints(folder: str | Path) -> None:
    """`recover_folder` for every checkpoint a kill left set aside (a save of the same name)."""
    for aside in Path(folder).glob(".ckpt-*.old-*"):
        name = aside.name[1:].rsplit(".old-", 1)[0]
        if recover_folder(Path(folder) / name):
            log.info("%s: put back the checkpoint a save interrupted", Path(folder) / name)


def checkpoint_folder(checkpoints: str | Path, epoch: int, step: int = 0) -> Path:
    """`ckpt-EEEE` after `epoch` whole epochs; `ckpt-EEEE-SSSSSS` `step` steps further."""
    return Path(checkpoints) / (f"ckpt-{epoch:04d}" + (f"-{step:06d}" if step else ""))


def checkpoint_position(checkpoint: str | Path) -> tuple[int, int]:
    """(whole epochs, steps into the next) that a checkpoint's name says."""
    match = CHECKPOINT_NAME.match(Path(checkpoint).name)
    return int(match.group(1)), int(match.group(2) or 0)


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if CHECKPOINT_NAME.match(p.name) and (p / CHECKPOINT_META).is_file()]
    return sorted(found, key=checkpoint_position)


def latest_checkpoint(folder: str | Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def checkpoint_problem(checkpoint: Path) -> str | None:
    """What is wrong with a complete-looking checkpoint's files (their sizes and sha256, as
    meta.json recorded them when it was saved), or None if they are as saved.  Catches a
    truncated or half-synced copy (a Drive folder) and flipped bits; checkpoints written
    before dcgan 0.4 record no checksums and pass."""
    try:
        meta = json.loads((checkpoint / CHECKPOINT_META).read_text())
        recorded = meta.get("files") or {}
    except (OSError, ValueError, AttributeError) as e:
        return f"{CHECKPOINT_META} is unreadable ({type(e).__name__})"
    for name, expected in recorded.items():
        path = checkpoint / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"{name} is missing"
        if size != expected.get("bytes"):
            return f"{name} has {size} bytes, {expected.get('bytes')} when saved"
        if sha256_file(path) != expected.get("sha256"):
            return f"{name} is not what was saved (sha256 differs)"
    return None


def latest_intact_checkpoint(folder: str | Path) -> Path | None:
    """The newest checkpoint whose files are as saved (see `checkpoint_problem`), naming each
    damaged one it passes over; None if there is none at all; CheckpointError, one line, if
    every one is damaged."""
    recover_checkpoints(folder)
    found = list_checkpoints(folder)
    for checkpoint in reversed(found):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        log.warning("skipping %s: damaged (%s); trying the one before", checkpoint, problem)
    if found:
        raise CheckpointError(f"{folder}: every checkpoint is damaged ({len(found)}, newest "
                              f"{found[-1].name}); copy intact ones back, or start a new run")
    return None


# What a notebook (or `train(config, if_exists=...)`) does when its run folder already holds
# a run: continue it as saved, continue it with the new settings, start beside it, or replace it.
IF_EXISTS = ("resume", "resume_changed", "new_run", "overwrite")


def next_free_folder(root: str | Path) -> Path:
    """`root` if it holds no run, else the first of `root-2`, `root-3`, ... that holds none."""
    root = Path(root)
    candidate, n = root, 1
    while RunPaths(candidate).exists():
        n += 1
        candidate = root.with_name(f"{root.name}-{n}")
    return candidate


def changed_fields(saved: Config, config: Config) -> list[str]:
    """The fields in which `config` differs from a run's saved config (out_dir aside)."""
    return [f.name for f in fields(Config) if f.name != "out_dir"
            and getattr(saved, f.name) != getattr(config, f.name)]


def changes_table(saved: Config, config: Config, names: list[str]) -> str:
    """'  d_learning_rate  0.0001 -> 0.0003' lines, one per changed field."""
    width = max(len(n) for n in names)
    return "\n".join(f"  {n:<{width}}  {getattr(saved, n)!r} -> {getattr(config, n)!r}"
                     for n in names)


def saved_config(paths: RunPaths, say: bool = True) -> tuple[Config | None, Path | None]:
    """(the run's config, its newest intact checkpoint): config.json, or where it is missing
    (a half-synced Drive folder) the newest checkpoint's own copy, which `say` logs; (None,
    None) for no run."""
    checkpoint = latest_intact_checkpoint(paths.checkpoints)
    if paths.config.exists():
        return Config.from_json(paths.config), checkpoint
    if checkpoint is None:
        return None, None
    if say:
            log.info("%s has no config.json; resuming from %s's copy of the config", paths.root,
                 checkpoint.name)
    return Config.from_json(checkpoint / "config.json"), checkpoint


def _same_images(saved: Config, config: Config, checkpoint: Path, identify, apply: bool) -> bool:
    """Whether `config.data` holds the images the run was trained on (the identity its
    checkpoint recorded, dcgan.data.pipeline.data_identity), wherever they are now."""
    try:
        recorded = json.loads((checkpoint / CHECKPOINT_META).read_text()).get("data_identity")
    except (OSError, ValueError):
        recorded = None
    if not recorded or identify is None:
        return False
    try:
        now = identify(config)
    except Exception as e:  # the new path does not open: say so in the refusal's words
        log.info("%s: %s", config.data, e)
        return False
    if now != recorded:
        return False
    if apply:
        log.info("the run's %s images now come from %s (trained from %s)",
                 recorded.split(":")[0], config.data, saved.data)
    return True


def resolve_run(config: Config, resume: bool | str = False, overwrite: bool = False,
                allow_config_change: bool = False, apply: bool = True,
                if_exists: str | None = None, identify=None) -> tuple[Config, Path | None]:
    """Decide between a new run and a resumed one; return (config to use, checkpoint or None).

    `resume`: False (a new run; refuses an existing one unless `overwrite`), True
    (continue `config.out_dir`) or "auto" (continue when there is a checkpoint, else
    start).  `if_exists` (one of IF_EXISTS; the notebook's IF_RUN_EXISTS) replaces those
    three for a folder that may hold a run, and its errors name it instead of CLI flags.
    A run stopped before its first checkpoint has nothing to lose, so resuming it starts
    it again.  `apply=False` decides without clearing anything (the other processes of a
    multi-host run; the chief clears).  A run is found by its config.json or, where that is
    missing, by its checkpoints (each holds a copy of the config): nothing but `overwrite`
    ever removes a checkpoint.  `identify(config)` (dcgan.data.pipeline's data_identity of the
    config's images): a `data` path that differs from the saved one resumes when its images
    are the ones the run recorded.
    """
    if if_exists is not None:
        if if_exists not in IF_EXISTS:
            raise CheckpointError(f"IF_RUN_EXISTS = {if_exists!r}: choose one of "
                                  f"{', '.join(IF_EXISTS)}")
        if if_exists == "new_run":
            folder = next_free_folder(config.out_dir)
            if str(folder) != str(config.out_dir):
                log.info("%s already holds a run; this one goes to %s", config.out_dir, folder)
                config = config.replace(out_dir=str(folder))
            return config, None
        if if_exists == "overwrite":
            return resolve_run(config, overwrite=True, apply=apply)
        resume, allow_config_change = "auto", if_exists == "resume_changed"
    paths = RunPaths(config.out_dir)
    saved, checkpoint = saved_config(paths) if resume else (None, None)
    if saved is not None:
        if checkpoint is None:
            if apply:
                log.info("%s stopped before its first checkpoint; starting it again from its "
                         "saved config", paths.root)
                paths.clear()
            return config, None
        changed = [n for n in changed_fields(saved, config) if n not in RESUMABLE_CHANGES]
        moved = "data" in changed and _same_images(saved, config, checkpoint, identify, apply)
        if moved:
            changed.remove("data")
        if changed and not allow_config_change:
            detail = ", ".join(f"{n} ({getattr(saved, n)!r} -> {getattr(config, n)!r})"
                               for n in changed[:4])
            if if_exists is not None:
                raise CheckpointError(
                    f"{paths.root} holds a run with other settings: {detail}. Set "
                    'IF_RUN_EXISTS = "resume_changed" to go on with the new ones, "new_run" to '
                    'start a new run beside it, or "overwrite" to replace it')
            raise CheckpointError(
                f"{paths.root}: the saved run differs in {detail}; drop those flags to resume "
                "as saved, pass --allow-config-change to resume with them, or use a new --out")
        if changed and apply:
            log.info("resuming %s with changed settings:\n%s", paths.root,
                     changes_table(saved, config, changed))
        merged = config if changed else saved.replace(
            **{n: getattr(config, n) for n in RESUMABLE_CHANGES}, out_dir=config.out_dir,
            **({"data": config.data} if moved else {}))
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
