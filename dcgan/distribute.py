"""Data-parallel training on the engines Keras and TensorFlow already have.

- JAX: `keras.distribution.DataParallel`.  The whole train_step is one program over the
  global batch: Keras shards each batch along its first axis, weights and optimizer
  state are replicated, XLA inserts the all-reduces; BatchNorm statistics are the
  global batch's.
- TensorFlow: `tf.distribute.MirroredStrategy`; the GAN (both networks, both
  optimizers) is built in its scope and Keras splits each batch over the replicas and
  sums the gradients.  Keras losses divide by the number of replicas there
  (dcgan.backend.global_loss logs them as one device would); BatchNorm is synchronized.

On both, latents and label noise are drawn for the global batch and each replica uses
its slice (dcgan.backend.replica_share), so N devices compute what one device would,
up to the order of float sums.  `batch_size` stays the global batch, split evenly;
learning rates are unchanged.  PyTorch has no released Keras distribution: more than
one device there is refused with one line.
"""

from __future__ import annotations

import contextlib
import logging

import keras

from dcgan.config import Config
from dcgan.errors import ConfigError
from dcgan.hardware import Accelerator, local_accelerator

log = logging.getLogger("dcgan.train")
MULTI_DEVICE_BACKENDS = ("jax", "tensorflow")


def resolve_devices(config: Config, backend: str | None = None,
                    accelerator: Accelerator | None = None) -> int:
    """`config.devices` as a number of devices this process can train on.

    "auto": every local GPU/TPU on JAX and TensorFlow; one on a CPU and on PyTorch."""
    backend = backend or keras.backend.backend()
    accelerator = accelerator or local_accelerator(backend)
    if config.devices == "auto":
        if accelerator.platform == "cpu":
            return 1
        if backend not in MULTI_DEVICE_BACKENDS:
            if accelerator.count > 1:
                log.info("%s: training on 1 of %d %s devices (--backend jax or tensorflow "
                         "uses all of them)",
                         backend, accelerator.count, accelerator.platform.upper())
            return 1
        return accelerator.count
    count = int(config.devices)
    if count > 1 and backend not in MULTI_DEVICE_BACKENDS:
        raise ConfigError(f"config field devices={config.devices}: more than one device needs "
                          f"--backend jax or tensorflow; Keras on {backend} trains on one")
    available = len(_devices(backend))
    if count > available:
        raise ConfigError(f"config field devices={count}: this machine has {available} "
                          f"{accelerator.platform.upper()} device(s) for Keras")
    return count


def check_batch(config: Config, devices: int) -> None:
    """The global batch must split evenly over the devices."""
    if config.batch_size % devices:
        raise ConfigError(f"config field batch_size={config.batch_size}: does not split over "
                          f"{devices} devices; use a multiple of {devices}")


def use_devices(devices: int):
    """Make the Keras objects created from now on data-parallel over `devices` (1: none).

    Returns the context to build the GAN in (TensorFlow: the strategy's scope)."""
    backend = keras.backend.backend()
    if backend == "jax":
        distribution = None
        if devices > 1:
            distribution = keras.distribution.DataParallel(devices=_devices(backend)[:devices])
        keras.distribution.set_distribution(distribution)
    elif backend == "tensorflow" and devices > 1:
        import tensorflow as tf

        names = [d.name for d in _devices(backend)[:devices]]
        return tf.distribute.MirroredStrategy(names).scope()
    return contextlib.nullcontext()


def _devices(backend: str) -> list:
    """The devices Keras can train on here: accelerators, else the (possibly simulated) CPUs."""
    if backend == "jax":
        import jax

        devices = jax.devices()
        return [d for d in devices if d.platform != "cpu"] or devices
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [None]
