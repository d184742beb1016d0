"""Complete, atomic training checkpoints, and resuming from them.

A checkpoint is a folder `checkpoints/ckpt-EEEE/` holding:

- `state.index` + `state.data-*`: a `tf.train.Checkpoint` of generator, its
  EMA copy, discriminator, both optimizers (moments and iteration counts) and
  the GAN's random-generator state;
- `latents.npy`: the fixed sample latents; `config.json`: the run's config;
- `meta.json`: epoch, optimizer steps, time, library versions (written last).

It is written to `.ckpt-EEEE.partial-PID/`, every file fsynced, then renamed
into place, so a kill during a save leaves the previous checkpoints intact and
no folder that looks complete.  The last `keep` checkpoints are kept, and the
final one always.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from dcgan.config import Config
from dcgan.env import environment
from dcgan.errors import CheckpointError
from dcgan.io import fsync_tree, remove_stale_partials
from dcgan.run import CHECKPOINT_META, checkpoint_folder, list_checkpoints

log = logging.getLogger("dcgan.train")
PARTIAL_PATTERN = ".ckpt-*.partial-*"


def _tf_checkpoint(gan):
    import tensorflow as tf  # lazy: the checkpoint format is TensorFlow's (only that backend trains)

    parts = dict(generator=gan.generator, discriminator=gan.discriminator,
                 d_optimizer=gan.d_optimizer, g_optimizer=gan.g_optimizer,
                 seed_state=gan.seed_generator.state.value)
    if gan.ema_generator is not None:
        parts["ema_generator"] = gan.ema_generator
    return tf.train.Checkpoint(**parts)


def build_optimizers(gan) -> None:
    """Create the optimizers' variables now, so a checkpoint can be restored into them."""
    gan.d_optimizer.build(gan.discriminator.trainable_variables)
    gan.g_optimizer.build(gan.generator.trainable_variables)


def save_checkpoint(folder: str | Path, gan, epoch: int, config: Config, latents: np.ndarray,
                    final: bool = False, keep: int = 3) -> Path:
    """Write checkpoint `ckpt-EPOCH` atomically into `folder`; prune old ones; return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = checkpoint_folder(folder, epoch)
    partial = folder / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    started = time.perf_counter()
    try:
        _tf_checkpoint(gan).write(str(partial / "state"))
        np.save(partial / "latents.npy", np.asarray(latents, np.float32))
        config.to_json(partial / "config.json")
        meta = {"epoch": epoch, "d_steps": int(gan.d_optimizer.iterations.numpy()),
                "g_steps": int(gan.g_optimizer.iterations.numpy()), "final": final,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **environment()}
        (partial / CHECKPOINT_META).write_text(json.dumps(meta, indent=1) + "\n")
        fsync_tree(partial)
        if target.exists():  # the same epoch saved again (e.g. final == last periodic)
            shutil.rmtree(target)
        os.replace(partial, target)
        fsync_tree(folder, files=False)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.debug("saved %s in %.2fs", target, time.perf_counter() - started)
    _prune(folder, keep)
    return target


def read_meta(checkpoint: Path) -> dict:
    return json.loads((checkpoint / CHECKPOINT_META).read_text())


def restore_checkpoint(checkpoint: Path, gan) -> dict:
    """Load `checkpoint` into `gan` (built, compiled); return its meta.json."""
    build_optimizers(gan)
    try:
        status = _tf_checkpoint(gan).read(str(checkpoint / "state"))
        status.assert_existing_objects_matched()
        meta = read_meta(checkpoint)
    except Exception as e:  # corrupt, foreign or mismatched: one line
        raise CheckpointError(f"{checkpoint}: cannot be restored ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return meta


def _prune(folder: Path, keep: int) -> None:
    checkpoints = list_checkpoints(folder)
    for old in checkpoints[:-keep] if keep > 0 else []:
        try:
            if read_meta(old).get("final"):
                continue
        except (OSError, ValueError):
            pass
        shutil.rmtree(old, ignore_errors=True)
    remove_stale_partials(folder, PARTIAL_PATTERN)
