"""No library log noise reaches the user: TensorFlow's C++ start-up lines are filtered."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dcgan.quiet import NOISE, filter_noise

ROOT = Path(__file__).resolve().parents[1]

SEEN_IN_THE_WILD = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795441657.641057    2223 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1714668459.875897  381002 cuda_dnn.cc:8310] Unable to register cuDNN factory
2024-05-02 10:11:12.123456: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on.
I0000 00:00:1795441653.123917    2223 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
"""


def test_the_filter_drops_cpp_log_lines_and_keeps_everything_else():
    kept = "UserWarning: something the user should read\nerror: a real problem\n"
    assert filter_noise(SEEN_IN_THE_WILD + kept) == kept
    assert all(NOISE.match(line) for line in SEEN_IN_THE_WILD.splitlines() if line.startswith(("W", "I", "E", "2")))


def _python(code, env=None):
    env = dict(os.environ if env is None else env, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)


def test_importing_keras_after_dcgan_prints_nothing():
    result = _python("import dcgan, keras, tensorflow as tf; tf.constant(1.0) + 1; print('ok')")
    assert result.returncode == 0 and result.stdout.strip() == "ok"
    assert result.stderr == "", result.stderr


def test_a_failing_import_still_shows_its_error(tmp_path):
    # A broken tensorflow package must not be hidden by the filter.
    broken = tmp_path / "site"
    (broken / "tensorflow").mkdir(parents=True)
    (broken / "tensorflow" / "__init__.py").write_text(
        "import sys\nprint('native library missing', file=sys.stderr)\nraise ImportError('boom')\n")
    env = dict(os.environ)
    code = f"import sys; sys.path.insert(0, {str(broken)!r}); import dcgan; import tensorflow"
    result = _python(code, env)
    assert result.returncode != 0
    assert "native library missing" in result.stderr and "ImportError: boom" in result.stderr


def test_package_metadata_uses_an_spdx_licence():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # A table here makes setuptools print a deprecation warning on every install (`make`).
    assert project["license"] == "MIT"


def test_the_clis_stderr_filter_drops_late_cpp_lines_and_passes_the_rest():
    # What TensorFlow 2.20 writes at its first XLA compilation, long after its import.
    code = """
import os, sys, time
from dcgan.quiet import filter_native_stderr
filter_native_stderr()
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
os.write(2, b"I0000 00:00:1795890358.761 2341 device_compiler.h:196] Compiled cluster using XLA!\\n")
os.write(2, b"E0000 00:00:1795890358.762 2341 gpu_kernel.cc:9] Out of memory allocating 4.0GiB\\n")
print("a python line", file=sys.stderr, flush=True)
os.write(2, b"\\rprogress 50%")  # a progress bar: no newline, shown after a moment
time.sleep(0.6)
os.write(2, b"\\rprogress 100%\\n")
os.write(2, b"last words before a crash")
os._exit(3)  # no atexit: the filter process still writes what it was given
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 3
    # TensorFlow's ERROR lines are a failure's words: they reach the user, INFO lines do not
    assert done.stderr == (b"E0000 00:00:1795890358.762 2341 gpu_kernel.cc:9] Out of memory allocating "
                           b"4.0GiB\na python line\n\rprogress 50%\rprogress 100%\nlast words before a crash")


def test_tensorflow_keeps_its_error_lines_once_dcgan_is_imported():
    result = _python("import os, dcgan; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    assert result.stdout.strip() == "2"  # INFO and WARNING hidden, ERROR shown (3 hid ERROR too)
