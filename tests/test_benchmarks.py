"""Every script under benchmarks/ runs end to end at tiny sizes and prints its table, so a
command the README cites cannot silently break (the numbers themselves are not checked here)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script, *args, backend="torch", timeout=420):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 2, result.stdout  # a header and at least one row
    return rows


def test_input_pipeline(tmp_path):
    rows = _run("input_pipeline.py", "--preset", "demo", "--images", "16,32", "--train-steps", "1")
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["16", "32"]


def test_train_speed_with_the_pytorch_peer():
    rows = _run("train_speed.py", "--presets", "demo,dcgan64", "--backends", "torch", "--rounds", "1",
                "--steps", "1", "--batch-size", "4")
    assert any("plain PyTorch" in r for r in rows)


def test_checkpoint_size():
    rows = _run("checkpoint_size.py", "--presets", "demo", "--repeats", "1")
    assert "demo" in rows[1]


def test_latent_edits():
    rows = _run("latent_edits.py", "--train-epochs", "1", "--train-images", "128", "--faces", "2",
                "--random", "16", "--steps", "4", "--seeds", "8", "--images", "64", "--samples",
                "128", "--epochs", "1", "--ablations")
    assert any("generated faces (latent known)" in r for r in rows)
    assert any("one 64x64 photo" in r or "search only" in r for r in rows)


def test_explore_speed():
    rows = _run("explore_speed.py", "--presets", "demo", "--redraws", "2")
    assert rows[1].split("|")[1].strip() == "demo"


@pytest.mark.parametrize("args", [["--seconds", "3", "--n", "32"],
                                  ["--recipes", "demo", "--seconds", "3", "--n", "32"],
                                  ["--backends", "torch", "--steps", "2", "--n", "32"]])
def test_quality_modes(args):
    _run("quality.py", *args)


def test_quality_scores_one_run_at_each_step_count_for_each_seed():
    rows = _run("quality.py", "--recipes", "demo", "--at-steps", "2,4", "--n", "32",
                "--seeds", "0,1")
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows[1:]]
    assert [c[:3] for c in cells] == [["demo", "0", "2"], ["demo", "0", "4"], ["demo", "1", "2"],
                                      ["demo", "1", "4"], ["demo", "mean of 2", "2"],
                                      ["demo", "mean of 2", "4"]]
    # The mean row is the mean of its seeds' rows.
    by_seed = {(c[1], c[2]): float(c[-1]) for c in cells[:4]}
    mean_at_4 = float(cells[5][-1].split()[0].strip("*"))
    assert abs(mean_at_4 - (by_seed["0", "4"] + by_seed["1", "4"]) / 2) <= 0.006
    # Different seeds are different runs.
    assert cells[1][6] != cells[3][6]


@pytest.mark.parametrize("args, named", [(["--recipes", "demo", "--seeds", "0,x"], "--seeds"),
                                         (["--recipes", "demo", "--at-steps", "5,y"], "--at-steps"),
                                         (["--recipes", "demo,dem"], "dem;")])
def test_quality_bad_arguments_are_one_line(args, named):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), *args],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]


def test_colab_estimate():
    rows = _run("colab_estimate.py", "--measured", "4429", "--on", "NVIDIA H200")
    t4 = next(r for r in rows if r.startswith("| Tesla T4 |"))
    # 4,429 x 65 / 989.4 TFLOP/s; the plan line the T4 would print
    assert "| mixed_float16 | 291 |" in t4 and "an epoch takes 12 min" in t4
