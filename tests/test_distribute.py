"""Data-parallel training: N simulated devices compute what one does; runs move between counts.

JAX sees two CPU devices when XLA_FLAGS asks for them before it is imported, so those
runs are processes of their own.  Latents and label noise are drawn for the global batch
and sharded (dcgan.distribute), so the 2-device run matches the 1-device run up to the
order of float sums.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

from dcgan.errors import ConfigError
from dcgan.run import list_checkpoints
from dcgan.training import build_gan, train

ROOT = Path(__file__).resolve().parents[1]
TWO_CPU_DEVICES = "--xla_force_host_platform_device_count=2"


def _env(backend="jax"):
    env = dict(os.environ, KERAS_BACKEND=backend, XLA_FLAGS=TWO_CPU_DEVICES, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


_jax_env = _env

# TensorFlow splits its CPU into logical devices before its runtime starts.
TWO_TF_DEVICES = """
import dcgan, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""

SAME_ON_TWO_DEVICES = """
import json, sys
import keras
import numpy as np
from dcgan.config import Config
from dcgan.errors import ConfigError
from dcgan.training import build_gan, train
root = sys.argv[1]
# jit off: XLA and TensorFlow's own kernels round differently; XLA can't compile TF's
# multi-device step, so both runs take the same path.
base = Config.from_preset("demo", image_size=16, g_widths=(16, 8), batch_size=16, demo_images=64,
                          num_samples=4, jit_compile="auto" if sys.argv[2] == "jax" else "false")
one, h1 = train(base.replace(epochs=3, devices="1", out_dir=root + "/one"), progress=False)
# 2 devices, then 1, then 2 again: resumed across device counts both ways.
_, h2 = train(base.replace(epochs=1, devices="2", out_dir=root + "/two"), progress=False)
train(base.replace(epochs=2, devices="1", out_dir=root + "/two"), resume=True, progress=False)
two, h3 = train(base.replace(epochs=3, devices="2", out_dir=root + "/two"), resume=True,
                progress=False)
weights = lambda gan: gan.generator.get_weights() + gan.discriminator.get_weights()
try:
    train(base.replace(batch_size=15, devices="2", out_dir=root + "/odd"), progress=False)
    odd = "trained"
except ConfigError as e:
    odd = str(e)
print(json.dumps({
    "max_diff": max(float(np.abs(a - b).max()) for a, b in zip(weights(one), weights(two))),
    "losses": [h1.history["d_loss"][0], h2.history["d_loss"][0]],
    "resolved": json.load(open(root + "/two/environment.json"))["resolved"]["devices"],
    "odd_batch": odd,
    # exports load on any backend: BatchNorm there is not synchronized (a TF-only option)
    "exported_synchronized": any(getattr(layer, "synchronized", False) for layer in
                                 keras.saving.load_model(root + "/two/checkpoints/generator.keras").layers),
    "trained_synchronized": any(getattr(layer, "synchronized", False)
                                for layer in two.generator.layers)}))
"""


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_devices_compute_what_one_does_and_runs_move_between_counts(backend, tmp_path):
    """DataParallel (JAX) and MirroredStrategy (TF): global draws, synchronized BatchNorm."""
    script = (TWO_TF_DEVICES if backend == "tensorflow" else "") + SAME_ON_TWO_DEVICES
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), backend],
                            env=_env(backend), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["max_diff"] < 1e-5, out  # same weights after 3 epochs (12 steps), float tolerance
    assert abs(out["losses"][0] - out["losses"][1]) < 1e-5  # the logged loss means the same
    assert out["resolved"] == 2
    assert out["odd_batch"].startswith("config field batch_size=15: does not split over 2 devices")
    assert not (tmp_path / "odd").exists()
    assert out["trained_synchronized"] == (backend == "tensorflow")
    assert not out["exported_synchronized"]


def test_killed_two_device_run_resumes(tmp_path):
    flags = ["--preset", "demo", "--image-size", "16", "--g-widths", "16,8", "--batch-size", "8",
             "--demo-images", "64", "--steps-per-epoch", "8", "--num-samples", "4",
             "--devices", "2", "--out", "run"]
    folder = tmp_path / "run" / "checkpoints"
    process = subprocess.Popen([sys.executable, "-m", "dcgan", "train", *flags, "--epochs", "40"],
                               cwd=tmp_path, env=_jax_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list_checkpoints(folder) and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = list_checkpoints(folder)[-1]
    epoch = json.loads((saved / "meta.json").read_text())["epoch"]
    result = subprocess.run([sys.executable, "-m", "dcgan", "train", "--resume", "run", "--devices",
                             "2", "--epochs", str(epoch + 1)], cwd=tmp_path, env=_jax_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((list_checkpoints(folder)[-1] / "meta.json").read_text())
    assert meta["epoch"] == epoch + 1 and meta["d_steps"] == (epoch + 1) * 8


@pytest.mark.backends
def test_more_devices_than_the_backend_can_use_is_one_line(tiny_demo, tmp_path):
    config = tiny_demo.replace(devices="2", out_dir=str(tmp_path / "run"))
    expected = ("more than one device needs --backend jax or tensorflow"
                if keras.backend.backend() == "torch" else "this machine has 1 CPU device")
    with pytest.raises(ConfigError, match=expected):
        train(config, progress=False)
    assert not (tmp_path / "run").exists()
    # A run trained on 8 devices, several steps per call, still loads here to sample from.
    gan = build_gan(config.replace(devices="8", steps_per_execution=4))
    assert gan.generate(2).shape == (2, 16, 16, 3)
