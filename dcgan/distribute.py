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

Several hosts (`join_cluster`, called once per process before anything else runs):
- JAX: `keras.distribution.initialize` (jax.distributed: coordinator address, process
  count and id, from flags or Keras' KERAS_DISTRIBUTION_* variables; on Cloud TPU and
  SLURM, JAX finds them itself), then DataParallel over every device of every process.
  Each process reads only its slice of each global batch.
- TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy` from TF_CONFIG (or one made
  from the same flags); each worker reads the global batch and tf.data keeps its slice.
Every process runs the same computations (sampling included); only the chief
(process 0) writes the run folder, and every process reads it to resume.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time

import keras

from dcgan.config import Config
from dcgan.errors import ConfigError

log = logging.getLogger("dcgan.train")
MULTI_DEVICE_BACKENDS = ("jax", "tensorflow")
CLUSTER_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID")
_cluster: dict = {}  # set once by join_cluster: process_index, process_count, strategy (TF)
COORDINATOR_WAIT_S = 300  # JAX's own initialization timeout, after which it aborts the process


def join_cluster(job_addresses: str | None = None, num_processes: int | None = None,
                 process_id: int | None = None, seed: int = 0) -> bool:
    """Join a multi-host cluster when one is named; return whether this process is in one.

    Named by the arguments (the CLI's --job-addresses/--num-processes/--process-id),
    else by Keras' KERAS_DISTRIBUTION_* variables, else (TensorFlow) by TF_CONFIG.
    Must run before the backend touches a device.  `seed`: the run's seed, so Keras
    needs no cross-process exchange to agree on one."""
    backend = keras.backend.backend()
    job_addresses = job_addresses or os.environ.get(CLUSTER_VARIABLES[0]) or None
    num_processes = _number(num_processes, CLUSTER_VARIABLES[1])
    process_id = _number(process_id, CLUSTER_VARIABLES[2])
    named = (job_addresses, num_processes, process_id) != (None, None, None)
    if backend == "tensorflow" and (named or os.environ.get("TF_CONFIG")):
        return _join_tensorflow(job_addresses, num_processes, process_id)
    if not named:
        return False
    if backend != "jax":
        raise ConfigError(f"--job-addresses/--num-processes/--process-id: several hosts need "
                          f"--backend jax or tensorflow; Keras on {backend} trains on one")
    _check_process(num_processes, process_id)
    if job_addresses and process_id:  # JAX aborts the process (no Python error) when none answers
        wait_for_coordinator(job_addresses.split(",")[0])
    keras.utils.set_random_seed(seed)
    try:
        keras.distribution.initialize(job_addresses, num_processes, process_id)
    except (RuntimeError, ValueError) as error:  # bad address, peers that never came, ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = job_addresses or "found by JAX"
        raise ConfigError(f"could not join the cluster at {where}: {first}") from None
    import jax

    _cluster.update(process_index=jax.process_index(), process_count=jax.process_count())
    log.info("process %d of %d in the cluster (%d devices in all)",
             jax.process_index(), jax.process_count(), len(jax.devices()))
    return jax.process_count() > 1


def wait_for_coordinator(address: str, seconds: float = COORDINATOR_WAIT_S) -> None:
    """Wait until something listens at the coordinator's HOST:PORT; one line if nothing does."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--job-addresses {address}: expected HOST:PORT, e.g. 10.0.0.1:1234")
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise ConfigError(f"no coordinator answered at {address} within {seconds:.0f} s; "
                                  "start process 0 there with the same --job-addresses, or "
                                  "check the address") from None
            time.sleep(0.5)


def _number(value: int | None, variable: str) -> int | None:
    """`value`, else the environment variable's, as an int (None when neither is set)."""
    if value is not None or not os.environ.get(variable):
        return value
    try:
        return int(os.environ[variable])
    except ValueError:
        raise ConfigError(f"{variable}={os.environ[variable]!r}: expected a whole number") from None


def _check_process(num_processes, process_id) -> None:
    if num_processes is not None and num_processes < 1:
        raise ConfigError(f"--num-processes {num_processes}: must be at least 1")
    if process_id is not None and not 0 <= process_id < (num_processes or process_id + 1):
        raise ConfigError(f"--process-id {process_id}: must be between 0 and "
                          f"{(num_processes or 1) - 1} (--num-processes {num_processes})")


def _join_tensorflow(job_addresses, num_processes, process_id) -> bool:
    """MultiWorkerMirroredStrategy from TF_CONFIG, or from the flags (every worker's address)."""
    if job_addresses or num_processes is not None or process_id is not None:
        workers = [a for a in (job_addresses or "").split(",") if a]
        _check_process(len(workers) if num_processes is None else num_processes, process_id)
        if len(workers) < 2 or process_id is None or num_processes not in (None, len(workers)):
            raise ConfigError("--job-addresses: TensorFlow needs every worker's address "
                              "(host0:port,host1:port,...) and --process-id; or set TF_CONFIG")
        os.environ["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": process_id}})
    try:
        json.loads(os.environ["TF_CONFIG"])
    except ValueError:
        raise ConfigError("TF_CONFIG: not valid JSON; see tf.distribute.cluster_resolver."
                          "TFConfigClusterResolver for its form") from None
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    chiefs = len(spec.get("chief", []))  # a "chief" task, when named, comes first
    count = chiefs + len(spec.get("worker", []))
    index = resolver.task_id + (chiefs if resolver.task_type == "worker" else 0)
    _cluster.update(process_index=index, process_count=count, strategy=strategy)
    log.info("worker %d of %d in the cluster (%d replicas in all)", index, count,
             strategy.num_replicas_in_sync)
    return count > 1


def process_index() -> int:
    """This process's place in the cluster (0 = the chief, which writes the run folder)."""
    return _cluster.get("process_index", 0)


def process_count() -> int:
    return _cluster.get("process_count", 1)


def is_chief() -> bool:
    return process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process of the cluster gets here (no-op on one process)."""
    if process_count() < 2:
        return
    strategy = _cluster.get("strategy")
    if strategy is not None:  # a collective all-reduce is TensorFlow's barrier
        import tensorflow as tf

        tf.function(lambda: strategy.reduce(
            "SUM", strategy.run(lambda: tf.constant(1.0)), axis=None))()
        return
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def data_shard() -> tuple[int, int]:
    """(index, count): which slice of each global batch this process reads.  JAX: its own
    slice; TensorFlow reads the global batch and tf.data keeps the worker's part."""
    if keras.backend.backend() == "jax":
        return process_index(), process_count()
    return 0, 1


def local_device_count(backend: str | None = None) -> int:
    """How many devices Keras can train on here (a cluster's: all of them)."""
    return len(_devices(backend or keras.backend.backend()))


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
        if devices > 1:  # each process feeds its own slice of the batch (data_shard)
            distribution = keras.distribution.DataParallel(
                devices=_devices(backend)[:devices], auto_shard_dataset=False)
        keras.distribution.set_distribution(distribution)
    elif backend == "tensorflow" and "strategy" in _cluster:
        return _cluster["strategy"].scope()
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

        if "strategy" in _cluster:
            return [None] * _cluster["strategy"].num_replicas_in_sync
        return tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [None]
