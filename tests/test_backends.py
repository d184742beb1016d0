"""The same training code on every Keras backend.

Tests marked `backends` run here on TensorFlow (this process) and, through
`test_marked_tests_pass_on`, once more on JAX and on PyTorch, each in a
process of its own (Keras picks its backend once per process; TensorFlow and
torch in one process can crash).  Checkpoints move between backends.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
OTHER_BACKENDS = ["jax", "torch"]


def _env(backend, **extra):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT), **extra)
    for name in ("TF_CPP_MIN_LOG_LEVEL", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT",
                 "PYTEST_XDIST_TESTRUNUID", "DCGAN_STRICT_SKIPS"):
        env.pop(name, None)
    return env


def marked_files() -> list[str]:
    """The test files with tests marked `backends`: only these are collected on the other
    backends (collecting every module would import what they never run, TensorFlow too)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if "mark.backends" in p.read_text() and p.name != "test_backends.py")


def test_only_the_files_with_marked_tests_go_to_the_other_backends():
    files = marked_files()
    assert "tests/test_gan.py" in files and "tests/test_resume.py" in files
    assert "tests/test_config.py" not in files and "tests/test_augment.py" not in files


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_marked_tests_pass_on(backend, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "backends", "-q", "-rs", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "pytest"), "--durations=10", *marked_files()],
        env=_env(backend), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
    # a marked test that skips here has not shown it works on this backend
    assert " skipped" not in result.stdout, result.stdout[-3000:]


TRAIN = """
import json, sys
import keras
from dcgan.config import Config
from dcgan.training.loop import train
config = Config.from_preset("demo", image_size=16, g_widths=(16, 8), batch_size=16, demo_images=64,
                            num_samples=4, epochs=int(sys.argv[2]), out_dir=sys.argv[1])
gan, _ = train(config, resume=sys.argv[3] == "resume", progress=False)
print(json.dumps({"backend": keras.backend.backend()}))
"""

DUMP_RESTORED = """
import sys
from dcgan.training.checkpoint import _write_state, restore_checkpoint
from dcgan.config import Config
from dcgan.outputs.folder import latest_checkpoint
from dcgan.training.loop import build_gan
checkpoint = latest_checkpoint(sys.argv[1] + "/checkpoints")
gan = build_gan(Config.from_json(checkpoint / "config.json"))
restore_checkpoint(checkpoint, gan)
_write_state(sys.argv[2], gan)
"""


def _run(backend, code, *args):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=_env(backend),
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]
    return result.stdout


@pytest.mark.parametrize("first,then", [("tensorflow", "jax"), ("jax", "torch")])
def test_a_checkpoint_resumes_on_another_backend(first, then, tmp_path):
    run = tmp_path / "run"
    _run(first, TRAIN, run, 1, "new")
    saved = run / "checkpoints" / "ckpt-0001" / "state.npz"
    # Restored on the other backend: every variable is bit-identical.
    _run(then, DUMP_RESTORED, run, tmp_path / "restored.npz")
    with np.load(saved) as a, np.load(tmp_path / "restored.npz") as b:
        assert sorted(a.files) == sorted(b.files) and len(a.files) > 20
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # And training goes on there, in the same run folder.
    _run(then, TRAIN, run, 2, "resume")
    environment = json.loads((run / "environment.json").read_text())
    assert environment["backend"] == then
    assert [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()] == [
        "epoch", "1", "2"]


BLOCK_TENSORFLOW = """
import importlib.abc, sys
class HideTensorFlow(importlib.abc.MetaPathFinder):  # as if it were not installed
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return None
        return self.finder.find_spec(name, path, target)
    def invalidate_caches(self):
        getattr(self.finder, "invalidate_caches", lambda: None)()
sys.meta_path[:] = [HideTensorFlow(f) if hasattr(f, "find_spec") else f for f in sys.meta_path]
"""


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_a_runtime_without_tensorflow_decodes_and_trains(backend, tmp_path):
    from PIL import Image

    from dcgan.data.demo_faces import demo_faces

    (tmp_path / "faces").mkdir()
    for i, face in enumerate(demo_faces(40, 48, seed=3)):
        Image.fromarray(face).save(tmp_path / "faces" / f"{i:02d}.{'jpg' if i % 2 else 'png'}")
    code = BLOCK_TENSORFLOW + """
from dcgan.apps.cli import main
code = main(["train", "--preset", "demo", "--data", sys.argv[1], "--image-size", "16",
             "--g-widths", "16,8", "--batch-size", "8", "--epochs", "1", "--num-samples", "4",
             "--out", sys.argv[2], "--backend", sys.argv[3]])
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
sys.exit(code)
"""
    _run(backend, code, tmp_path / "faces", tmp_path / "run", backend)
    assert (tmp_path / "run" / "checkpoints" / "ckpt-0001" / "state.npz").exists()
    assert (tmp_path / "run" / "samples" / "epoch_001.png").exists()
    meta = json.loads((tmp_path / "run" / "checkpoints" / "ckpt-0001" / "meta.json").read_text())
    assert meta["backend"] == backend


SAMPLE_AND_SCORE = """
import json, sys
import numpy as np
from dcgan.evaluation.scoring import evaluate
from dcgan.outputs.sampling import generate, interpolate
run, out = sys.argv[1], sys.argv[2]
faces = generate(run, n=8, seed=3, out=out + ".png")
walk = interpolate(run, 1, 2, steps=4, out=out + ".gif")
scores = evaluate(run, metrics=("swd",), n=64, out=out + ".json")
np.save(out + ".npy", faces)
print(json.dumps({"swd": scores["swd"]["swd_x1e3_avg"], "walk": list(walk.shape)}))
"""


def test_a_generator_samples_and_scores_the_same_on_every_backend(tmp_path):
    run = tmp_path / "run"
    _run("tensorflow", TRAIN, run, 1, "new")
    results = {}
    for backend in ["tensorflow", *OTHER_BACKENDS]:
        out = tmp_path / backend
        results[backend] = json.loads(_run(backend, SAMPLE_AND_SCORE, run, out).strip().splitlines()[-1])
        assert (tmp_path / f"{backend}.png").exists() and (tmp_path / f"{backend}.gif").exists()
    faces = {b: np.load(tmp_path / f"{b}.npy") for b in results}
    for backend in OTHER_BACKENDS:  # same weights, same latents: the same faces and scores
        np.testing.assert_allclose(faces[backend], faces["tensorflow"], atol=1e-4)
        assert results[backend]["walk"] == results["tensorflow"]["walk"]
        assert abs(results[backend]["swd"] - results["tensorflow"]["swd"]) < 1e-3 * results["tensorflow"]["swd"]
