"""What accelerator this process trains on, and what it can do at best.

`local_accelerator()` asks the running Keras backend (never another one: TensorFlow
next to torch can crash a process).  `PEAK_TFLOPS` is the dense (no sparsity) peak
of known devices per precision, from the vendors' data sheets; the roofline
benchmark (benchmarks/train_speed.py) reports a run's share of it, and the
`auto` choices (dcgan.settings) read the platform and compute capability.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    """The first local device Keras trains on: platform "cpu", "gpu" or "tpu"."""

    platform: str
    name: str
    compute_capability: tuple[int, int] | None = None  # NVIDIA GPUs only
    count: int = 1  # local devices of this platform

    def peak_tflops(self, dtype: str) -> float | None:
        """Dense peak TFLOP/s for `dtype` ("float32", "float16", "bfloat16"), or None if unknown."""
        for marker, peaks in PEAK_TFLOPS:
            if marker.lower() in self.name.lower():
                return peaks.get(dtype)
        return None


# (name fragment, dense peak TFLOP/s per compute dtype), most specific first; the float32
# figures are the plain FP32 rate (TF32 tensor cores, on by default in some libraries
# on Ampere and later, can go past it).  Vendors' data sheets; sparsity figures halved.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"float32": 51.2, "float16": 756.0, "bfloat16": 756.0}),
    ("H100", {"float32": 66.9, "float16": 989.4, "bfloat16": 989.4}),  # SXM
    ("H200", {"float32": 66.9, "float16": 989.4, "bfloat16": 989.4}),
    ("A100", {"float32": 19.5, "float16": 312.0, "bfloat16": 312.0}),
    ("A10G", {"float32": 31.2, "float16": 70.0, "bfloat16": 70.0}),
    ("L4", {"float32": 30.3, "float16": 121.0, "bfloat16": 121.0}),
    ("T4", {"float32": 8.1, "float16": 65.0}),
    ("V100", {"float32": 15.7, "float16": 125.0}),
    ("TPU v6 lite", {"bfloat16": 918.0}),  # v6e, per chip
    ("TPU v5 lite", {"bfloat16": 197.0}),  # v5e, per chip
    ("TPU v4", {"bfloat16": 275.0}),
    ("TPU v3", {"bfloat16": 61.5}),  # per core (JAX sees 2 per chip)
    ("TPU v2", {"bfloat16": 22.5}),  # per core
)


def local_accelerator(backend: str | None = None) -> Accelerator:
    """The device the running Keras backend trains on (its first one)."""
    if backend is None:
        import keras

        backend = keras.backend.backend()
    probe = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}.get(backend)
    found = probe() if probe else None
    return found or Accelerator("cpu", f"CPU ({os.cpu_count()} cores)", count=1)


def _capability(text) -> tuple[int, int] | None:
    try:
        major, minor = str(text).split(".")[:2]
        return int(major), int(minor)
    except (TypeError, ValueError):
        return None


def _tensorflow() -> Accelerator | None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf_gpu_details(gpus[0])
    capability = details.get("compute_capability")
    return Accelerator("gpu", details.get("device_name") or gpus[0].name,
                       tuple(capability) if capability else None, len(gpus))


def tf_gpu_details(device) -> dict:
    """TensorFlow's details of a GPU (device_name, compute_capability); {} where unreported."""
    import tensorflow as tf

    try:  # not every TF build reports details
        return tf.config.experimental.get_device_details(device)
    except Exception:  # noqa: BLE001 - a name is only nice to have
        return {}


def _jax() -> Accelerator | None:
    import jax

    devices = jax.devices()
    first = devices[0]
    if first.platform == "cpu":
        return None
    platform = "tpu" if first.platform == "tpu" else "gpu"
    return Accelerator(platform, first.device_kind,
                       _capability(getattr(first, "compute_capability", None)), len(devices))


def _torch() -> Accelerator | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return Accelerator("gpu", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0),
                       torch.cuda.device_count())
