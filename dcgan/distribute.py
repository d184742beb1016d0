"""Data-parallel training on the engine Keras already has: `keras.distribution.DataParallel`.

On JAX the whole train_step is one program over a global batch: Keras shards each
batch along its first axis over the devices, the weights and optimizer state are
replicated, and XLA inserts the all-reduces.  Latents and label noise are drawn for
the global batch and sharded with it, so N devices compute what one device would
(up to the order of float sums); BatchNorm statistics are the global batch's.
`batch_size` stays the global batch, split evenly; learning rates are unchanged.

Keras' distribution API is JAX-only in released Keras, and PyTorch has none: more
than one device on those backends is refused with one line (TensorFlow's own
MirroredStrategy is not wired in yet).
"""

from __future__ import annotations

import logging

import keras

from dcgan.config import Config
from dcgan.errors import ConfigError
from dcgan.hardware import Accelerator, local_accelerator

log = logging.getLogger("dcgan.train")
MULTI_DEVICE_BACKENDS = ("jax",)


def resolve_devices(config: Config, backend: str | None = None,
                    accelerator: Accelerator | None = None) -> int:
    """`config.devices` as a number of devices this process can train on.

    "auto": every local accelerator on JAX, one on a CPU and on the other backends."""
    backend = backend or keras.backend.backend()
    accelerator = accelerator or local_accelerator(backend)
    if config.devices == "auto":
        if accelerator.platform == "cpu":
            return 1
        if backend not in MULTI_DEVICE_BACKENDS:
            if accelerator.count > 1:
                log.info("%s: training on 1 of %d %s devices (--backend jax uses all of them)",
                         backend, accelerator.count, accelerator.platform.upper())
            return 1
        return accelerator.count
    count = int(config.devices)
    if count > 1 and backend not in MULTI_DEVICE_BACKENDS:
        raise ConfigError(f"config field devices={config.devices}: more than one device needs "
                          f"--backend jax (Keras' distribution API); {backend} trains on one")
    available = len(_jax_devices()) if backend == "jax" else 1
    if count > available:
        raise ConfigError(f"config field devices={count}: this machine has {available} "
                          f"{accelerator.platform.upper()} device(s) for Keras")
    return count


def check_batch(config: Config, devices: int) -> None:
    """The global batch must split evenly over the devices."""
    if config.batch_size % devices:
        raise ConfigError(f"config field batch_size={config.batch_size}: does not split over "
                          f"{devices} devices; use a multiple of {devices}")


def use_devices(devices: int) -> None:
    """Make the Keras objects created from now on data-parallel over `devices` (1: none)."""
    if keras.backend.backend() not in MULTI_DEVICE_BACKENDS:
        return
    distribution = None
    if devices > 1:
        distribution = keras.distribution.DataParallel(devices=_jax_devices()[:devices])
    keras.distribution.set_distribution(distribution)


def _jax_devices() -> list:
    import jax

    devices = jax.devices()
    accelerators = [d for d in devices if d.platform != "cpu"]
    return accelerators or devices
