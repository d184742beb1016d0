"""The command line end to end, in a temporary folder, as a user runs it."""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error  # and the `cli` fixture, in conftest too
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "demo", "--image-size", "16", "--g-widths", "32,16", "--batch-size", "16",
        "--demo-images", "64", "--num-samples", "9"]


def user_env():
    """The environment a user's shell gives the CLI (no log-level variables set by the tests)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dcgan", *args], cwd=cwd, env=user_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    result = run_cli("train", *TINY, "--epochs", "2", "--out", "runs/tiny", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd, result


def test_train_writes_config_samples_checkpoints_and_losses(trained_run):
    cwd, result = trained_run
    run = cwd / "runs" / "tiny"
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == "demo" and config["image_size"] == 16 and config["g_widths"] == [32, 16]
    samples = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert samples == ["epoch_000.png", "epoch_001.png", "epoch_002.png", "real.png"]
    assert np.load(run / "samples" / "latents.npy").shape == (9, 32)
    assert (run / "checkpoints" / "generator.keras").stat().st_size > 0
    assert (run / "checkpoints" / "discriminator.keras").stat().st_size > 0
    assert "d_loss" in result.stdout and "g_loss" in result.stdout
    assert len((run / "log.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs


def test_no_library_log_lines_reach_the_user(trained_run):
    _, result = trained_run  # training with XLA on (the demo preset): the noisiest path
    lines = result.stderr.splitlines()
    # An independent pattern, not the filter's own: C++ source locations ("foo.cc:31]"),
    # absl's banner, and the words TensorFlow's start-up and XLA lines carry.
    noise = [line for line in lines
             if re.search(r"\.(cc|h):\d+\]|absl::InitializeLog|XLA|oneDNN|cuda|TF-TRT", line)]
    assert noise == [], noise
    assert "Traceback" not in result.stderr


def test_the_cli_tells_the_time_left_once_steps_are_timed(tmp_path):
    result = run_cli("train", *TINY, "--demo-images", "128", "--epochs", "2", "--out", "runs/eta",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pace = [line for line in result.stderr.splitlines() if line.startswith("pace: ")]
    assert len(pace) == 1 and re.fullmatch(
        r"pace: [\d,]+ img/s, [\d.]+ s per epoch, about [\d.]+ s left for 1 epoch", pace[0]), pace
    # and once, before that, the plan: device, precision, img/s, an epoch, the run
    plan = [line for line in result.stderr.splitlines() if line.startswith("plan: ")]
    assert len(plan) == 1 and re.fullmatch(
        r"plan: CPU \(\d+ cores\), float32: [\d,]+ img/s; an epoch takes [\d.]+ s; 2 epochs would "
        r"take [\d.]+ s", plan[0]), plan


def test_a_run_killed_before_its_first_checkpoint_continues_with_resume(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "dcgan", "train", *TINY, "--steps-per-epoch", "100000", "--out", "k"],
        cwd=tmp_path, env=user_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (tmp_path / "k" / "samples" / "epoch_000.png").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "k" / "checkpoints").exists()
    result = run_cli("train", "--resume", "k", "--steps-per-epoch", "2", "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "k stopped before its first checkpoint; starting it again from its saved config" in result.stderr
    assert (tmp_path / "k" / "checkpoints" / "ckpt-0001" / "meta.json").exists()


def test_generate_from_a_run_folder_is_reproducible(trained_run):
    cwd, _ = trained_run
    for name in ("a.png", "b.png"):
        result = run_cli("generate", "--checkpoint", "runs/tiny", "--n", "6", "--seed", "0",
                         "--columns", "3", "--out", name, cwd=cwd)
        assert result.returncode == 0, result.stderr
    a, b = (np.asarray(Image.open(cwd / n)) for n in ("a.png", "b.png"))
    assert a.shape == (2 * 18 + 2, 3 * 18 + 2, 3)
    np.testing.assert_array_equal(a, b)


def test_generate_by_seeds_is_reproducible_image_by_image(trained_run):
    cwd, _ = trained_run
    for name, seeds in (("many.png", "0-3,7"), ("one.png", "7")):
        result = run_cli("generate", "--checkpoint", "runs/tiny", "--seeds", seeds, "--columns", "5",
                         "--out", name, cwd=cwd)
        assert result.returncode == 0, result.stderr
    many, one = (np.asarray(Image.open(cwd / n)) for n in ("many.png", "one.png"))
    cell = 16 + 2
    np.testing.assert_array_equal(many[2:2 + 16, 2 + 4 * cell:2 + 4 * cell + 16], one[2:18, 2:18])
    assert_one_line_error(run_cli("generate", "--checkpoint", "runs/tiny", "--seeds", "5-2", cwd=cwd),
                          "--seeds 5-2")


def test_interpolate_writes_a_strip_and_a_gif(trained_run):
    cwd, _ = trained_run
    for out in ("walk.png", "walk.gif"):
        result = run_cli("interpolate", "--checkpoint", "runs/tiny", "--from", "3", "--to", "7",
                         "--steps", "6", "--out", out, cwd=cwd)
        assert result.returncode == 0, result.stderr
    strip = np.asarray(Image.open(cwd / "walk.png"))
    assert strip.shape == (16 + 4, 6 * 18 + 2, 3)
    gif = Image.open(cwd / "walk.gif")
    assert gif.n_frames == 6 + 4  # there and back
    # The walk starts at seed 3's face and ends at seed 7's.
    run_cli("generate", "--checkpoint", "runs/tiny", "--seeds", "3,7", "--columns", "2",
            "--out", "ends.png", cwd=cwd)
    ends = np.asarray(Image.open(cwd / "ends.png"))
    np.testing.assert_array_equal(strip[2:18, 2:18], ends[2:18, 2:18])
    np.testing.assert_array_equal(strip[2:18, 2 + 5 * 18:2 + 5 * 18 + 16], ends[2:18, 20:36])


def test_evaluate_writes_swd_with_its_floor(trained_run):
    cwd, _ = trained_run
    result = run_cli("evaluate", "--checkpoint", "runs/tiny", "--metrics", "swd", "--n", "32", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "SWDx1e3" in result.stdout and "real-vs-real" in result.stdout
    saved = json.loads((cwd / "runs/tiny/eval.json").read_text())
    assert saved["generator"] == "ema" and saved["n_fake"] == 32
    assert saved["swd"]["swd_x1e3_avg"] > 0 and saved["swd_floor"]["swd_x1e3_avg"] > 0
    assert len((cwd / "runs/tiny/metrics.jsonl").read_text().splitlines()) == 1
    assert_one_line_error(run_cli("evaluate", "--checkpoint", "runs/tiny", "--metrics", "is", cwd=cwd),
                          "--metrics is")
    (cwd / "copy.pth").write_bytes(b"a damaged copy")
    assert_one_line_error(run_cli("evaluate", "--checkpoint", "runs/tiny", "--metrics", "fid",
                                  "--inception-weights", "copy.pth", cwd=cwd),
                          "copy.pth", "sha256", "FID weights")


def test_resume_from_the_command_line(trained_run):
    cwd, _ = trained_run
    result = run_cli("train", "--resume", "runs/tiny", "--epochs", "3", cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "epoch 3/3" in result.stdout and "epoch 1/" not in result.stdout
    assert (cwd / "runs/tiny/samples/epoch_003.png").exists()
    conflict = run_cli("train", "--resume", "runs/tiny", "--epochs", "4", "--batch-size", "8", cwd=cwd)
    assert_one_line_error(conflict, "batch_size (16 -> 8)", "--allow-config-change")
    assert_one_line_error(run_cli("train", "--resume", "runs/nothing", cwd=cwd), "runs/nothing")


def test_an_existing_run_is_not_overwritten_by_accident(trained_run):
    cwd, _ = trained_run
    before = (cwd / "runs/tiny/checkpoints/generator.keras").read_bytes()
    result = run_cli("train", *TINY, "--epochs", "1", "--out", "runs/tiny", cwd=cwd)
    assert_one_line_error(result, "runs/tiny", "--overwrite")
    assert (cwd / "runs/tiny/checkpoints/generator.keras").read_bytes() == before


@pytest.mark.parametrize("args,words", [
    (["train", "--data", "no/such/folder"], ["no/such/folder", "no such file"]),
    (["train", "--image-size", "48"], ["image_size=48"]),
    (["train", "--batch-size", "0"], ["batch_size=0"]),
    (["train", "--latent-dim", "x"], ["latent_dim='x'"]),
    (["train", "--r1-interval", "0"], ["r1_interval=0", "at least 1"]),
    (["train", "--spectral-norm", "treu"], ["spectral_norm='treu'", "expected true or false"]),
    (["generate", "--checkpoint", "no/run"], ["no/run"]),
    (["generate", "--checkpoint", "x", "--n", "0"], ["--n 0"]),
])
def test_bad_input_gets_one_clear_line(cli, tmp_path, args, words):
    assert_one_line_error(cli(*args, cwd=tmp_path), *words)


def test_an_empty_data_folder_is_refused_before_anything_is_written(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("train", *TINY, "--data", "empty", "--out", "runs/x", cwd=tmp_path)
    assert_one_line_error(result, "empty", "no images")
    assert not (tmp_path / "runs").exists()


def test_a_corrupt_checkpoint_is_one_line(cli, tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert_one_line_error(cli("generate", "--checkpoint", "broken.keras", cwd=tmp_path),
                          "broken.keras")


def test_help_for_each_command(cli, tmp_path):
    for command in ("train", "generate"):
        result = cli(command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "--out" in result.stdout
    train = cli("train", "--help", cwd=tmp_path).stdout
    assert "--label-mode {noise,one_sided}" in train and "--split {all,train,valid,test}" in train
    wrong = cli("train", "--split", "dev", cwd=tmp_path)  # argparse's own one-line error
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "argument --split: invalid choice: 'dev'" in wrong.stderr


def test_a_backend_that_cannot_train_or_is_missing_is_one_line(tmp_path):
    cases = [("cobol", ["KERAS_BACKEND=cobol", "choose one of"]),
             ("numpy", ["KERAS_BACKEND=numpy", "dcgan runs on tensorflow, jax, torch"])]  # no gradients
    if not importlib.util.find_spec("openvino"):  # a real Keras backend, not installed here
        cases.append(("openvino", ["KERAS_BACKEND=openvino", "pip install openvino"]))
    for backend, words in cases:
        result = subprocess.run([sys.executable, "-m", "dcgan", "train", *TINY, "--out", "b"],
                                cwd=tmp_path, env=dict(user_env(), KERAS_BACKEND=backend),
                                capture_output=True, text=True, timeout=300)
        assert_one_line_error(result, *words)
        assert not (tmp_path / "b").exists()  # nothing written


def test_switching_backend_after_keras_loaded_is_one_clear_error():
    import keras

    from dcgan.env import select_backend
    from dcgan.errors import DcganError

    running = keras.backend.backend()
    assert select_backend(running) == running and select_backend("auto") == running
    other = "jax" if running != "jax" else "torch"
    with pytest.raises(DcganError, match=f"already running on {running}.*restart"):
        select_backend(other)


@pytest.mark.parametrize("args, words", [
    (["train", "--preset", "nope"], ["--preset", "invalid choice: 'nope'", "train --help"]),
    (["generate", "--checkpoint", "x", "--n", "many"], ["--n", "invalid int value"]),
    ([], ["COMMAND"]),
])
def test_bad_arguments_are_one_line_without_the_usage_block(cli, tmp_path, args, words):
    result = cli(*args, cwd=tmp_path)
    assert_one_line_error(result, *words)
    assert result.stderr.count("\n") == 1 and "usage:" not in result.stderr


def test_resume_of_a_run_whose_config_json_is_gone_goes_on_from_its_checkpoints(tmp_path):
    assert run_cli("train", *TINY, "--epochs", "1", "--jit-compile", "false", "--out", "r",
                   cwd=tmp_path).returncode == 0
    (tmp_path / "r" / "config.json").unlink()  # a half-synced Drive folder
    result = run_cli("train", "--resume", "r", "--epochs", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("has no config.json; resuming from ckpt-0001's copy") == 1
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").glob("ckpt-*")) == [
        "ckpt-0001", "ckpt-0002"]
    missing = run_cli("train", "--resume", "nothing-here", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "error: nothing-here: not a run folder (no config.json, no complete checkpoint); check the path"]
