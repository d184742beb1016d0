"""Where we are running: notebook or terminal, and the versions and device (for reports)."""

from __future__ import annotations

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
    return sys.stderr.isatty() or in_notebook()


# Keras backends and the package each one needs.
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


def environment() -> dict:
    """Versions, Keras backend and device, for reproducibility notes."""
    import keras  # lazy: seconds to import; env.py is also used where Keras is not needed

    info = {"python": platform.python_version(), "keras": keras.__version__,
            "numpy": np.__version__, "backend": keras.backend.backend(),
            "machine": platform.machine(), "processor": platform.processor()}
    try:
        import tensorflow as tf  # optional: not every backend's runtime has it
    except ImportError:
        info["device"] = f"CPU ({os.cpu_count()} cores)"
        return info
    info["tensorflow"] = tf.__version__
    gpus = tf.config.list_physical_devices("GPU")
    info["device"] = ", ".join(f"GPU {i}: {_gpu_name(tf, d)}" for i, d in enumerate(gpus)) \
        or f"CPU ({os.cpu_count()} cores)"
    return info


def _gpu_name(tf, device) -> str:
    try:  # e.g. "Tesla T4"; not every TF build reports details
        return tf.config.experimental.get_device_details(device).get("device_name") or device.name
    except Exception:  # noqa: BLE001 - a name is only nice to have
        return device.name


def write_environment(path: str | Path) -> None:
    atomic_write_text(path, json.dumps(environment(), indent=1) + "\n")
