"""Complete, atomic training checkpoints, and resuming from them.

A checkpoint is a folder `checkpoints/ckpt-EEEE/` (after E whole epochs) or
`checkpoints/ckpt-EEEE-SSSSSS/` (mid-epoch, S steps into epoch E + 1: `checkpoint_minutes`,
or where `minutes` stopped the run) holding:

- `state.npz`: every variable of the generator, its EMA copy, the
  discriminator (weights, BatchNorm statistics, dropout's random stream), both
  optimizers (moments, iteration counts; loss scales under float16) and the
  GAN's random-generator state and the epoch's running loss means, as numpy arrays named
  `part/index` (backend-neutral: a checkpoint written on TensorFlow resumes on JAX or
  PyTorch and back);
- `latents.npy`: the fixed sample latents; `config.json`: the run's config;
- `meta.json`: epoch, step inside the next epoch, global step, images seen, the data's
  identity (dcgan.data.pipeline.data_identity), optimizer steps, time, library versions (written last).

It is written to `.ckpt-EEEE.partial-PID/`, every file fsynced, then swapped into
place (outputs.folder.new_folder), so a kill during a save leaves the previous checkpoints
intact and no folder that looks complete.  The last `keep` epoch-end checkpoints are kept, and the
final one always; a mid-epoch one only until a newer checkpoint exists (pruning is the run
folder's: dcgan.outputs.folder.prune_checkpoints).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import numpy as np

from dcgan.config import Config
from dcgan.env import environment
from dcgan.errors import CheckpointError
from dcgan.version import __version__
from dcgan.io import sha256_file
from dcgan.models.precision import inner_optimizer, loss_scale_variables
from dcgan.outputs.folder import CHECKPOINT_META, checkpoint_folder, new_folder, prune_checkpoints, read_meta

log = logging.getLogger("dcgan.train")


STATE_FILE = "state.npz"


# A run may change precision when it resumes (its "auto" differs between a T4, an A100
# and a CPU): loss scales are kept when both sides have them, and otherwise left out.
# Only a mid-epoch checkpoint holds the epoch's running loss means (trackers): an epoch's end
# resets them anyway.
OPTIONAL_PARTS = ("d_loss_scale", "g_loss_scale", "ada", "trackers")


def _layer_seeds(gan) -> list:
    """State the networks hold beyond their weights: the layers' random streams (Dropout)."""
    seeds = []
    for network in (gan.generator, gan.discriminator):
        weights = {id(w) for w in network.weights}
        seeds += [v for v in network.variables if id(v) not in weights]
    return seeds


def tracker_variables(gan) -> list:
    """The loss trackers' running sums and counts: a mid-epoch resume carries them into the
    rest of the epoch, so its log row is the uninterrupted run's."""
    return [v for metric in gan.metrics for v in metric.variables]


def state_parts(gan, trackers: bool = False) -> dict[str, list]:
    """The variables a checkpoint holds, by part, in a fixed order (`trackers`: with the
    loss trackers, which only a mid-epoch checkpoint needs: an epoch starts them afresh)."""
    parts = {"generator": gan.generator.weights, "discriminator": gan.discriminator.weights,
             "d_optimizer": inner_optimizer(gan.d_optimizer).variables,
             "g_optimizer": inner_optimizer(gan.g_optimizer).variables,
             "random_state": [gan.seed_generator.state]}
    if gan.ema_generator is not None:
        parts["ema_generator"] = gan.ema_generator.weights
    if trackers:
        parts["trackers"] = tracker_variables(gan)
    if gan.ada_target > 0:
        parts["ada"] = [gan.ada_p]
    if _layer_seeds(gan):
        parts["layer_seeds"] = _layer_seeds(gan)
    for part, optimizer in (("d_loss_scale", gan.d_optimizer), ("g_loss_scale", gan.g_optimizer)):
        if loss_scale_variables(optimizer):
            parts[part] = loss_scale_variables(optimizer)
    return parts


def variable_value(variable) -> np.ndarray:
    """A variable's value as numpy; tf.distribute's sync-on-read variables (the loss trackers
    under MirroredStrategy) only convert as Keras variables, reduced over the replicas."""
    try:
        return np.asarray(keras.ops.convert_to_numpy(variable.value))
    except ValueError:
        return np.asarray(keras.ops.convert_to_numpy(variable))


def _write_state(path: Path, gan, trackers: bool = False) -> None:
    # (Reading tf.distribute's trackers reduces over the workers: a multi-host chief, which
    # saves alone and only at epoch ends, must not.)
    arrays = {f"{part}/{i:04d}": variable_value(v)
              for part, variables in state_parts(gan, trackers).items()
              for i, v in enumerate(variables)}
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _read_state(path: Path, gan) -> None:
    """Assign every variable from `path`; ValueError naming the first mismatch."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = dict(stored.items())
    assignments = []
    for part, variables in state_parts(gan, trackers=True).items():
        saved = sorted(k for k in arrays if k.startswith(part + "/"))
        if not saved and part in OPTIONAL_PARTS:
            continue  # e.g. saved without loss scaling: start from the initial scale
        if len(saved) != len(variables):
            raise ValueError(f"{part} has {len(saved)} variables saved, the model {len(variables)}")
        for variable, key in zip(variables, saved):
            value = arrays.pop(key)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{key} ({variable.path}) is {value.shape} saved, "
                                 f"{tuple(variable.shape)} in the model")
            assignments.append((variable, value))
    arrays = {k: v for k, v in arrays.items() if k.split("/")[0] not in OPTIONAL_PARTS}
    if arrays:
        raise ValueError(f"{len(arrays)} saved variables have no place in the model "
                         f"(e.g. {next(iter(arrays))})")
    for variable, value in assignments:  # all checked first: nothing half-restored
        variable.assign(value)


def build_optimizers(gan) -> None:
    """Create the optimizers' variables now, so a checkpoint can be restored into them."""
    for optimizer, network in ((gan.d_optimizer, gan.discriminator), (gan.g_optimizer, gan.generator)):
        if not optimizer.built:  # a LossScaleOptimizer would build itself twice
            optimizer.build(network.trainable_variables)


def save_checkpoint(folder: str | Path, gan, epoch: int, config: Config, latents: np.ndarray,
                    final: bool = False, keep: int = 3, step: int = 0,
                    position: dict | None = None) -> Path:
    """Write checkpoint `ckpt-EPOCH` (`step` > 0: `ckpt-EPOCH-STEP`, that many steps into the
    next epoch) atomically into `folder`; prune old ones; return its path.  `position` goes
    into meta.json (global_step, images, data_identity: what an exact resume needs)."""
    folder = Path(folder)
    target = checkpoint_folder(folder, epoch, step)
    started = time.perf_counter()
    # Beside the checkpoints, then swapped in (outputs.folder.new_folder): a kill during a save
    # leaves the previous checkpoints intact and no folder that looks complete; a checkpoint
    # saved again under its own name (final == last periodic) is replaced, never half-written.
    with new_folder(target) as partial:
        _write_state(partial / STATE_FILE, gan, trackers=bool(step))
        np.save(partial / "latents.npy", np.asarray(latents, np.float32))
        config.to_json(partial / "config.json")
        files = {item.name: {"bytes": item.stat().st_size, "sha256": sha256_file(item)}
                 for item in sorted(partial.iterdir())}  # checked before a resume
        meta = {"epoch": epoch, "step": step, **(position or {}), "d_steps": _steps(gan.d_optimizer),
                "g_steps": _steps(gan.g_optimizer), "final": final,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dcgan": __version__,
                **environment(), "files": files}
        (partial / CHECKPOINT_META).write_text(json.dumps(meta, indent=1) + "\n")
    log.debug("saved %s in %.2fs", target, time.perf_counter() - started)
    prune_checkpoints(folder, keep)
    return target


def _steps(optimizer) -> int:
    return int(keras.ops.convert_to_numpy(optimizer.iterations.value))


def restore_checkpoint(checkpoint: Path, gan) -> dict:
    """Load `checkpoint` into `gan` (built, compiled); return its meta.json."""
    build_optimizers(gan)
    try:
        _read_state(checkpoint / STATE_FILE, gan)
        meta = read_meta(checkpoint)
    except Exception as e:  # corrupt, foreign or mismatched: one line
        raise CheckpointError(f"{checkpoint}: cannot be restored ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return meta
