"""Data-parallel training: N simulated devices compute what one does; runs move between counts.

JAX sees two CPU devices when XLA_FLAGS asks for them before it is imported, so those
runs are processes of their own.  Latents and label noise are drawn for the global batch
and sharded (dcgan.distribute), so the 2-device run matches the 1-device run up to the
order of float sums.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from dcgan.data.pipeline import BatchReader
from dcgan.data.demo_faces import DemoImages
from dcgan.distribute import join_cluster, wait_for_coordinator
from dcgan.errors import ConfigError
from dcgan.outputs.folder import list_checkpoints
from dcgan.outputs.sampling import generate
from dcgan.training.loop import build_gan, train

ROOT = Path(__file__).resolve().parents[1]
TWO_CPU_DEVICES = "--xla_force_host_platform_device_count=2"


def _env(backend="jax"):
    env = dict(os.environ, KERAS_BACKEND=backend, XLA_FLAGS=TWO_CPU_DEVICES, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


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
from dcgan.data.pipeline import BatchReader
from dcgan.data.demo_faces import DemoImages
from dcgan.distribute import join_cluster, wait_for_coordinator
from dcgan.errors import ConfigError
from dcgan.training.loop import build_gan, train
root = sys.argv[1]


class Spans(keras.callbacks.Callback):  # how many devices each step really ran on

    def __init__(self):
        super().__init__()
        self.seen = set()

    def on_train_batch_end(self, batch, logs=None):
        if keras.backend.backend() == "jax":
            mesh = getattr(keras.distribution.distribution(), "device_mesh", None)
            self.seen.add(1 if mesh is None else int(np.prod(mesh.shape)))
        else:
            self.seen.add(self.model.distribute_strategy.num_replicas_in_sync)


# jit off: XLA and TensorFlow's own kernels round differently; XLA can't compile TF's
# multi-device step, so both runs take the same path.
# DiffAugment's draws are global too (each replica keeps its slice); so is adaptive p (from
# all-reduced outputs), and the R1 penalty is the global batch's (JAX; on several TF replicas
# it runs every step, so BatchNorm's statistics move on steps one device skips).
base = Config.from_preset("demo", image_size=16, g_widths=(16, 8), batch_size=16, demo_images=64,
                          num_samples=4, jit_compile="auto" if sys.argv[2] == "jax" else "false",
                          diffaugment="color,translation,cutout", ada_target=0.3, ada_kimg=0.1,
                          r1_gamma=1.0 if sys.argv[2] == "jax" else 0.0, r1_interval=2)
one, h1 = train(base.replace(epochs=3, devices="1", out_dir=root + "/one"), progress=False)
# 2 devices, then 1, then 2 again: resumed across device counts both ways.
spans = [Spans() for _ in range(4)]
train(base.replace(epochs=1, devices="1", out_dir=root + "/spans"), progress=False, callbacks=[spans[0]])
_, h2 = train(base.replace(epochs=1, devices="2", out_dir=root + "/two"), progress=False,
              callbacks=[spans[1]])
train(base.replace(epochs=2, devices="1", out_dir=root + "/two"), resume=True, progress=False,
      callbacks=[spans[2]])
two, h3 = train(base.replace(epochs=3, devices="2", out_dir=root + "/two"), resume=True,
                progress=False, callbacks=[spans[3]])
weights = lambda gan: gan.generator.get_weights() + gan.discriminator.get_weights()
try:
    train(base.replace(batch_size=15, devices="2", out_dir=root + "/odd"), progress=False)
    odd = "trained"
except ConfigError as e:
    odd = str(e)
print(json.dumps({
    "max_diff": max(float(np.abs(a - b).max()) for a, b in zip(weights(one), weights(two), strict=True)),
    "losses": [h1.history["d_loss"][0], h2.history["d_loss"][0]],
    "resolved": json.load(open(root + "/two/environment.json"))["resolved"]["devices"],
    "odd_batch": odd,
    "spans": [sorted(s.seen) for s in spans],
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
    assert out["spans"] == [[1], [2], [1], [2]]  # the steps really ran on 2 devices (and on 1)
    assert out["odd_batch"].startswith("config field batch_size=15: does not split over 2 devices")
    assert not (tmp_path / "odd").exists()
    assert out["trained_synchronized"] == (backend == "tensorflow")
    assert not out["exported_synchronized"]


@pytest.mark.backends
def test_more_devices_than_the_backend_can_use_is_one_line(tiny_demo, tmp_path, monkeypatch):
    config = tiny_demo.replace(devices="2", out_dir=str(tmp_path / "run"))
    expected = ("more than one device needs --backend jax or tensorflow"
                if keras.backend.backend() == "torch" else "this machine has 1 CPU device")
    with pytest.raises(ConfigError, match=expected):
        train(config, progress=False)
    assert not (tmp_path / "run").exists()
    # Several hosts: one line for what can't be, before any connection is tried.
    refusals = ([("127.0.0.1:1", 2, 0, "several hosts need --backend jax or tensorflow")]
                if keras.backend.backend() == "torch" else
                [("127.0.0.1:1", 2, 5, "--process-id 5: must be between 0 and 1"),
                 ("127.0.0.1:1", 0, 0, "--num-processes 0: must be at least 1")])
    if keras.backend.backend() == "tensorflow":
        refusals.append(("127.0.0.1:1", None, 0, "TensorFlow needs every worker's address"))
    for addresses, count, index, message in refusals:
        with pytest.raises(ConfigError, match=message):
            join_cluster(addresses, count, index)
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "two")
    with pytest.raises(ConfigError, match="KERAS_DISTRIBUTION_NUM_PROCESSES='two': expected a whole"):
        join_cluster()
    # A run trained on 8 devices, several steps per call, still loads here to sample from.
    gan = build_gan(config.replace(devices="8", steps_per_execution=4))
    assert generate(gan, 2).shape == (2, 16, 16, 3)


# ------------------------------------------------------------------ several hosts
def test_each_process_reads_its_slice_of_the_global_batch():
    images = DemoImages(40, 8, seed=0)
    whole = BatchReader(images, 8, seed=3, first_epoch=2)
    halves = [BatchReader(images, 8, seed=3, first_epoch=2, shard=(i, 2)) for i in range(2)]
    for b in (0, 4, 5, 9):  # within an epoch and across epochs
        assert np.array_equal(np.concatenate([h.indices(b) for h in halves]), whole.indices(b))
    assert np.array_equal(np.concatenate([h(5) for h in halves]), whole(5))



# R1 off (the demo preset has it since 0.7): its gradient of a gradient, summed across workers
# in another order, moves the losses by ~4e-5, past this test's bound for "what one does"
TINY_RUN = ["--preset", "demo", "--image-size", "16", "--g-widths", "16,8", "--batch-size", "8",
            "--demo-images", "64", "--num-samples", "4", "--r1-gamma", "0"]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster_env(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)  # one CPU device per process: two processes, two devices
    return env


def _start_two_processes(backend, cwd, flags):
    """`python -m dcgan train FLAGS` as processes 0 and 1 of a localhost cluster."""
    ports = _free_ports(2)
    addresses = (f"127.0.0.1:{ports[0]}" if backend == "jax" else
                 ",".join(f"127.0.0.1:{p}" for p in ports))
    return [subprocess.Popen(
        [sys.executable, "-m", "dcgan", "train", *flags, "--job-addresses", addresses,
         "--num-processes", "2", "--process-id", str(i)],
        cwd=cwd, env=_cluster_env(backend), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(2)]


def test_a_coordinator_that_never_answers_is_one_line():
    (port,) = _free_ports(1)  # nothing listens there
    with pytest.raises(ConfigError, match=f"no coordinator answered at 127.0.0.1:{port} within 1 s"):
        wait_for_coordinator(f"127.0.0.1:{port}", seconds=1)
    with pytest.raises(ConfigError, match="--job-addresses localhost: expected HOST:PORT"):
        wait_for_coordinator("localhost", seconds=1)
    with socket.socket() as server:  # a listening coordinator: no wait
        server.bind(("127.0.0.1", 0))
        server.listen()
        wait_for_coordinator(f"127.0.0.1:{server.getsockname()[1]}", seconds=1)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_two_processes_on_localhost_survive_a_kill_and_train_what_one_does(backend, tmp_path):
    """jax.distributed (through keras.distribution.initialize) / MultiWorkerMirroredStrategy
    on 127.0.0.1: two processes of one CPU device each read their halves of each global batch
    of 8; both are killed (SIGKILL) after the first checkpoint, resume together from the run
    folder, and end where one uninterrupted process does.  Only process 0 writes."""
    # jit: JAX compiles the step (faster); TensorFlow can't across workers, nor does one here.
    flags = [*TINY_RUN, "--jit-compile", "auto" if backend == "jax" else "false"]
    checkpoints = tmp_path / "two" / "checkpoints"
    processes = _start_two_processes(backend, tmp_path, [*flags, "--epochs", "40", "--out", "two"])
    try:
        deadline = time.monotonic() + 300
        while not list_checkpoints(checkpoints) and all(p.poll() is None for p in processes):
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.01)
    finally:
        for p in processes:
            p.kill()
    outputs = [p.communicate() for p in processes]
    assert list_checkpoints(checkpoints), outputs[0][1][-3000:] + outputs[1][1][-3000:]
    epochs = json.loads((list_checkpoints(checkpoints)[-1] / "meta.json").read_text())["epoch"] + 1

    processes = _start_two_processes(backend, tmp_path, ["--resume", "two", "--epochs", str(epochs)])
    try:
        outputs = [p.communicate(timeout=300) for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    assert f"epoch {epochs}/{epochs}" in outputs[0][0]  # the chief reports,
    assert "epoch" not in outputs[1][0] and "error" not in outputs[1][1]  # the other is quiet
    single = subprocess.run([sys.executable, "-m", "dcgan", "train", *flags, "--epochs",
                             str(epochs), "--out", "one"], cwd=tmp_path,
                            env=_cluster_env(backend), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]

    rows = {r.split(",")[0]: r for r in (tmp_path / "two" / "log.csv").read_text().splitlines()[1:]}
    assert len(rows) == len((tmp_path / "two" / "log.csv").read_text().splitlines()) - 1  # one writer
    assert str(epochs) in rows
    one_rows = (tmp_path / "one" / "log.csv").read_text().splitlines()[1:]
    assert set(rows) == {row.split(",")[0] for row in one_rows}  # every epoch logged, once
    for row in one_rows:
        if row.split(",")[0] in rows:  # d_loss, g_loss, d_real, d_fake as one device's
            assert np.allclose([float(x) for x in row.split(",")[1:5]],
                               [float(x) for x in rows[row.split(",")[0]].split(",")[1:5]],
                               atol=1e-5), (row, rows)
    for network in ("generator", "discriminator"):
        one, two = (keras.saving.load_model(tmp_path / run / "checkpoints" / f"{network}.keras")
                    for run in ("one", "two"))
        assert max(float(np.abs(a - b).max())
                   for a, b in zip(one.get_weights(), two.get_weights(), strict=True)) < 1e-5
    meta = json.loads((list_checkpoints(checkpoints)[-1] / "meta.json").read_text())
    assert meta["epoch"] == epochs and meta["d_steps"] == epochs * 8
    environment = json.loads((tmp_path / "two" / "environment.json").read_text())
    assert environment["resolved"]["devices"] == 2
