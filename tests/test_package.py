"""The package is complete without its source tree: built as a wheel, installed into a folder
outside the checkout, it answers --help and trains the demo (what a Colab install gets)."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "dcgan", source / "dcgan",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (built,) = out.glob("dcgan-*.whl")
    return built


def test_the_wheel_holds_every_module_and_its_metadata(wheel):
    import dcgan

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "dcgan").rglob("*.py")}
    assert {"dcgan/apps/cli.py", "dcgan/training/loop.py", "dcgan/data/sources.py"} <= modules
    assert modules <= names, sorted(modules - names)  # every folder of the package is in it
    assert wheel.name.startswith(f"dcgan-{dcgan.__version__}-")
    metadata = next(n for n in names if n.endswith("METADATA"))
    with zipfile.ZipFile(wheel) as z:
        text = z.read(metadata).decode()
    assert "Provides-Extra: hf" in text and "huggingface-hub" in text.lower()
    # Keras before 3.14 lets a .keras file bypass safe_mode or write outside its folder
    assert "Requires-Dist: keras>=3.14" in text


def test_installed_from_the_wheel_it_runs_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    # The wheel's copy comes first on the path; the test environment supplies its dependencies.
    env = dict(os.environ, PYTHONPATH=str(target), KERAS_BACKEND="tensorflow")

    def dcgan(*args, timeout=300):
        return subprocess.run([sys.executable, "-m", "dcgan", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=timeout)

    where = subprocess.run([sys.executable, "-c", "import dcgan; print(dcgan.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(target))
    helped = dcgan("--help")
    assert helped.returncode == 0 and "train" in helped.stdout
    trained = dcgan("train", "--preset", "demo", "--image-size", "16", "--g-widths", "16,8",
                    "--batch-size", "8", "--demo-images", "32", "--num-samples", "4",
                    "--epochs", "1", "--steps-per-epoch", "2", "--out", "runs/wheel")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (work / "runs" / "wheel" / "checkpoints" / "generator.keras").exists()
    assert (work / "runs" / "wheel" / "samples" / "epoch_001.png").exists()
