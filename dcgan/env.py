"""Where we are running: notebook or terminal, and the versions and device (for reports)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from dcgan.errors import DcganError
from dcgan.io import atomic_write_text


def in_notebook() -> bool:
    """True inside a Jupyter/Colab kernel (grids are then also shown inline)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return type(shell).__name__ in ("ZMQInteractiveShell", "Shell")


def show_progress() -> bool:
    """Progress bars only where a person watches: a terminal or a notebook, not a CI log."""
    from dcgan.quiet import stderr_is_terminal  # fd 2 may be a pipe to dcgan's log filter

    return stderr_is_terminal() or in_notebook()


# The backends dcgan trains on (the default first), and every Keras backend's package.
BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy",
                    "openvino": "openvino"}


def check_backend() -> str:
    """The Keras backend asked for by KERAS_BACKEND (default tensorflow); DcganError, one line,
    when it is unknown or its package is not installed (instead of an ImportError traceback)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKEND_PACKAGES:
        raise DcganError(f"KERAS_BACKEND={backend}: choose one of {', '.join(BACKEND_PACKAGES)}")
    package = BACKEND_PACKAGES[backend]
    if importlib.util.find_spec(package) is None:
        raise DcganError(f"KERAS_BACKEND={backend} needs the {package} package: pip install "
                         f"{package}, or unset KERAS_BACKEND to use TensorFlow")
    return backend


def on_tpu_runtime() -> bool:
    """A TPU host (Colab's TPU runtimes: JAX, no TensorFlow)."""
    return bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_ACCELERATOR_TYPE")
                or Path("/dev/accel0").exists() or Path("/dev/vfio/0").exists())


def on_nvidia_gpu_host() -> bool:
    """An NVIDIA GPU is attached (its driver's device files), seen without loading any
    framework: nothing has claimed GPU memory yet."""
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


def jax_has_cuda() -> bool:
    """JAX is installed with its CUDA plugin (as Colab's GPU runtimes ship it: jax[cuda12]),
    found by name only: importing JAX would claim most of the GPU's memory."""
    if importlib.util.find_spec("jax") is None:
        return False
    names = [f"jax_cuda{v}_plugin" for v in (12, 13)] + [f"jax_plugins.xla_cuda{v}" for v in (12, 13)]
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):  # jax_plugins absent
            continue
    return False


# Why the last auto_backend() chose what it did (the settings line quotes it).
auto_reason: str | None = None


def auto_backend() -> str:
    """KERAS_BACKEND if set; else JAX on a TPU host; on an NVIDIA GPU, JAX where it is
    installed with CUDA (the backend measured on GPUs: docs/speed.md), else TensorFlow; else
    the first installed of tensorflow, jax, torch (a runtime without TensorFlow still trains).
    Decided from files alone, before Keras loads and before anything claims GPU memory."""
    global auto_reason
    if os.environ.get("KERAS_BACKEND"):
        auto_reason = "KERAS_BACKEND"
        return os.environ["KERAS_BACKEND"]
    installed = [b for b in BACKENDS if importlib.util.find_spec(BACKEND_PACKAGES[b])]
    if on_tpu_runtime() and "jax" in installed:
        auto_reason = "auto: JAX on a TPU"
        return "jax"
    if on_nvidia_gpu_host():
        if jax_has_cuda():
            auto_reason = "auto: JAX with CUDA, the backend measured on GPUs"
            return "jax"
        if "tensorflow" in installed:
            auto_reason = "auto: a GPU, and JAX has no CUDA here; TensorFlow"
            return "tensorflow"
    auto_reason = "auto: the first installed of " + ", ".join(BACKENDS)
    return next(iter(installed), "tensorflow")


def select_backend(backend: str | None = None) -> str:
    """Use Keras `backend` ("auto" or None: `auto_backend()`): checked, and set in
    KERAS_BACKEND before Keras is imported; DcganError, one line, if Keras already runs
    on another one (restart the Python process / the notebook's runtime)."""
    if backend in (None, "auto"):
        loaded = sys.modules.get("keras")
        backend = loaded.backend.backend() if loaded is not None else auto_backend()
    if backend:
        loaded = sys.modules.get("keras")
        if loaded is not None and loaded.backend.backend() != backend:
            raise DcganError(f"Keras is already running on {loaded.backend.backend()}; the backend "
                             f"({backend}) must be chosen before Keras is imported: restart Python "
                             "(in a notebook: Runtime > Restart session) and choose it first")
        os.environ["KERAS_BACKEND"] = backend
    backend = check_backend()
    if backend not in BACKENDS:
        raise DcganError(f"KERAS_BACKEND={backend}: dcgan runs on {', '.join(BACKENDS)}")
    return backend


def environment() -> dict:
    """Versions, Keras backend and device, for reproducibility notes.

    Only the running backend is imported (TensorFlow next to torch can crash a process).
    """
    import keras  # lazy: seconds to import; env.py is also used where Keras is not needed

    backend = keras.backend.backend()
    info = {"python": platform.python_version(), "keras": keras.__version__,
            "numpy": np.__version__, "backend": backend,
            "machine": platform.machine(), "processor": platform.processor()}
    for package in ("tensorflow", "jax", "torch"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    accelerators = {"tensorflow": _tensorflow_devices, "jax": _jax_devices,
                    "torch": _torch_devices}.get(backend, lambda: [])()
    info["device"] = ", ".join(accelerators) or f"CPU ({os.cpu_count()} cores)"
    return info


def _tensorflow_devices() -> list[str]:
    import tensorflow as tf

    return [f"GPU {i}: {_gpu_name(tf, d)}" for i, d in enumerate(tf.config.list_physical_devices("GPU"))]


def _gpu_name(tf, device) -> str:
    from dcgan.hardware import tf_gpu_details  # e.g. "Tesla T4"

    return tf_gpu_details(device).get("device_name") or device.name


def _jax_devices() -> list[str]:
    import jax

    return [f"{d.platform.upper()} {d.id}: {d.device_kind}" for d in jax.devices()
            if d.platform != "cpu"]


def _torch_devices() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [f"GPU {i}: {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]


def write_environment(path: str | Path, resolved: dict | None = None) -> None:
    """environment() and, under "resolved", what a run's `auto` settings became here."""
    info = environment()
    if resolved:
        info["resolved"] = resolved
    atomic_write_text(path, json.dumps(info, indent=1) + "\n")
