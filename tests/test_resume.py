"""Training that never loses work: complete checkpoints, exact resume, kills, divergence, logs."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from dcgan.training.checkpoint import read_meta, restore_checkpoint
from dcgan.outputs.folder import list_checkpoints
from dcgan.config import Config
from dcgan.errors import CheckpointError, ConfigError, TrainingDiverged
from dcgan.training.loop import build_gan, train

ROOT = Path(__file__).resolve().parents[1]


def _value(variable):
    return np.array(keras.ops.convert_to_numpy(variable.value))


def _state(gan):
    return ([w.copy() for w in gan.generator.get_weights() + gan.discriminator.get_weights()
             + gan.ema_generator.get_weights()]
            + [_value(v) for v in gan.d_optimizer.variables + gan.g_optimizer.variables]
            + [_value(gan.seed_generator.state)])


def _small(tiny_demo, **changes):
    return tiny_demo.replace(demo_images=64, jit_compile="false", **changes)


@pytest.mark.backends
def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(tiny_demo, tmp_path):
    straight, _ = train(_small(tiny_demo, epochs=3, out_dir=str(tmp_path / "a")), progress=False)
    train(_small(tiny_demo, epochs=1, out_dir=str(tmp_path / "b")), progress=False)
    resumed, history = train(_small(tiny_demo, epochs=3, out_dir=str(tmp_path / "b")), resume=True,
                             progress=False)
    assert history.epoch == [1, 2]  # epoch numbering continues
    assert int(_value(resumed.d_optimizer.iterations)) == 3 * 4  # 64 images / 16 per batch
    for a, b in zip(_state(straight), _state(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2", "3"]  # the log continues
    assert sorted(p.name for p in (tmp_path / "b" / "samples").glob("epoch_*.png")) == [
        f"epoch_{i:03d}.png" for i in range(4)]
    np.testing.assert_array_equal(np.load(tmp_path / "a/checkpoints/ckpt-0003/latents.npy"),
                                  np.load(tmp_path / "b/checkpoints/ckpt-0003/latents.npy"))


@pytest.mark.backends
def test_a_checkpoint_holds_the_whole_state_and_old_ones_are_pruned(tiny_demo, tmp_path):
    config = _small(tiny_demo, epochs=5, keep_checkpoints=2, checkpoint_every=2,
                    out_dir=str(tmp_path / "run"))
    gan, _ = train(config, progress=False)
    folder = tmp_path / "run" / "checkpoints"
    assert [p.name for p in list_checkpoints(folder)] == ["ckpt-0002", "ckpt-0004", "ckpt-0005"][-2:]
    final = folder / "ckpt-0005"
    meta = read_meta(final)
    assert meta["final"] and meta["epoch"] == 5 and meta["d_steps"] == meta["g_steps"] == 20
    assert {"python", "keras", "numpy", "device"} <= set(meta)
    assert meta["backend"] == keras.backend.backend()
    assert Config.from_json(final / "config.json") == config
    assert np.load(final / "latents.npy").shape == (config.num_samples, config.latent_dim)
    # Restoring into fresh models gives back every weight, optimizer moment and RNG state.
    fresh = build_gan(config.replace(seed=123))
    restore_checkpoint(final, fresh)
    for a, b in zip(_state(gan), _state(fresh), strict=True):
        np.testing.assert_array_equal(a, b)
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert environment["keras"] and environment["device"]


def test_resume_refuses_a_conflicting_config(tiny_demo, tmp_path):
    config = _small(tiny_demo, epochs=1, out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    with pytest.raises(CheckpointError, match=r"batch_size \(16 -> 8\).*--allow-config-change"):
        train(config.replace(batch_size=8, epochs=2), resume=True, progress=False)
    _, history = train(config.replace(batch_size=8, epochs=2), resume=True, allow_config_change=True,
                       progress=False)
    assert history.epoch == [1]
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        train(config.replace(out_dir=str(tmp_path / "none")), resume=True, progress=False)


def test_overwrite_leaves_nothing_of_the_old_run_and_nothing_else_is_touched(tiny_demo, tmp_path):
    from dcgan.evaluation.scoring import evaluate

    run = tmp_path / "run"
    config = _small(tiny_demo, epochs=2, eval_every=1, eval_images=16, out_dir=str(run))
    train(config, progress=False)
    evaluate(run, n=16)
    (run / "tensorboard").mkdir()  # as --tensorboard true leaves it (the package is optional)
    (run / "tensorboard" / "events.out.tfevents.1").write_bytes(b"x")
    (run / "notes.txt").write_text("mine")  # things the user keeps in the folder
    (run / "mine").mkdir()
    (run / "mine" / "photo.png").write_bytes(b"x")
    started = time.time_ns()
    train(config.replace(epochs=1, eval_every=0), overwrite=True, progress=False)
    assert not (run / "metrics.jsonl").exists() and not (run / "eval.json").exists()
    assert not (run / "tensorboard").exists() and not (run / "checkpoints" / "ckpt-0002").exists()
    assert len((run / "log.csv").read_text().splitlines()) == 2  # header + the new epoch 1
    assert (run / "notes.txt").read_text() == "mine" and (run / "mine" / "photo.png").exists()
    # Every other file in the folder was written by the new run.
    old = [p for p in run.rglob("*") if p.is_file() and p.stat().st_mtime_ns < started
           and p.name not in ("notes.txt", "photo.png")]
    assert old == []


def test_a_run_stopped_before_its_first_checkpoint_resumes_by_starting_again(tiny_demo, tmp_path,
                                                                              caplog):
    import logging

    import keras

    class Killed(Exception):
        pass

    class KillAtFirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise Killed

    run = tmp_path / "run"
    config = _small(tiny_demo, epochs=2, out_dir=str(run))
    with pytest.raises(Killed):
        train(config, callbacks=[KillAtFirstStep()], progress=False)
    assert (run / "config.json").exists() and not list_checkpoints(run / "checkpoints")
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(config, progress=False)
    caplog.set_level(logging.INFO, logger="dcgan")
    _, history = train(config, resume=True, progress=False)
    assert history.epoch == [0, 1]
    lines = [r.getMessage() for r in caplog.records if "first checkpoint" in r.getMessage()]
    assert lines == [f"{run} stopped before its first checkpoint; starting it again from its saved config"]
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["ckpt-0001", "ckpt-0002"]


@pytest.mark.backends
def test_divergence_stops_with_one_clear_message(tiny_demo, tmp_path):
    config = _small(tiny_demo, epochs=3, d_learning_rate=1e30, g_learning_rate=1e30,
                    out_dir=str(tmp_path / "run"))
    with pytest.raises(TrainingDiverged) as err:
        train(config, progress=False)
    message = str(err.value)
    assert "\n" not in message and "epoch" in message and "step" in message
    assert "not finite" in message or "nan" in message or "inf" in message
    assert "no checkpoint was saved yet" in message


@pytest.mark.backends
def test_a_resume_with_changed_learning_rates_trains_with_the_new_ones(tiny_demo, tmp_path):
    """The rates are optimizer variables a checkpoint restores; the config's must win."""
    config = _small(tiny_demo, epochs=1, out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    gan, history = train(config.replace(epochs=2, d_learning_rate=3e-4, g_learning_rate=5e-5),
                         resume=True, allow_config_change=True, progress=False)
    assert history.epoch == [1]
    rates = [float(keras.ops.convert_to_numpy(o.learning_rate)) for o in (gan.d_optimizer, gan.g_optimizer)]
    assert np.allclose(rates, [3e-4, 5e-5])


def test_divergence_after_a_checkpoint_names_it_and_how_to_resume(tiny_demo, tmp_path):
    config = _small(tiny_demo, epochs=1, out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    with pytest.raises(TrainingDiverged) as err:  # the user raises the learning rates too far
        train(config.replace(epochs=3, d_learning_rate=1e30, g_learning_rate=1e30), resume=True,
              allow_config_change=True, progress=False)
    message = str(err.value)
    assert f"the last good checkpoint is {tmp_path / 'run' / 'checkpoints' / 'ckpt-0001'}" in message
    assert "--resume RUN --allow-config-change" in message
    # ...and what it says works: resume from there with a sane learning rate
    _, history = train(config.replace(epochs=2, d_learning_rate=1e-4), resume=True,
                       allow_config_change=True, progress=False)
    assert history.epoch == [1]


def test_logs_plot_and_progress_gif(tiny_demo, tmp_path):
    train(_small(tiny_demo, epochs=2, out_dir=str(tmp_path / "run")), progress=False)
    run = tmp_path / "run"
    header, *rows = (run / "log.csv").read_text().splitlines()
    # swd, fid, best_epoch: filled in the epochs the generator is scored (off here: 2 epochs);
    # ada_p: with adaptive augmentation (off here); kimg: thousands of images seen
    assert header == ("epoch,kimg,d_loss,g_loss,d_real,d_fake,seconds,images_per_s,swd,fid,"
                      "best_epoch,ada_p")
    assert len(rows) == 2 and all(float(v) >= 0 for v in rows[-1].split(",")[:8])
    assert rows[-1].split(",")[1] == "0.128"  # 2 epochs of 64 images
    assert rows[-1].split(",")[8:] == ["", "", "", ""]
    assert Image.open(run / "losses.png").size[0] > 300
    gif = Image.open(run / "progress.gif")
    assert gif.n_frames == 3  # epoch_000 .. epoch_002


KILL_FLAGS = ["--preset", "seed128", "--image-size", "32", "--seed-channels", "512",
              "--g-transpose-widths", "8,8,8,8", "--g-conv-widths", "8,8", "--d-widths", "8,8,8,8,8",
              "--batch-size", "8", "--demo-images", "64", "--steps-per-epoch", "25",
              "--num-samples", "4",
              # TF: no XLA compile per restart; JAX: un-jitted steps would be slower still
              "--jit-compile", "false" if keras.backend.backend() == "tensorflow" else "auto"]


def _start(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.Popen([sys.executable, "-m", "dcgan", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.002)
    raise AssertionError("timed out")


@pytest.mark.backends
def test_sigkill_mid_epoch_and_mid_save_then_resume(tmp_path):
    run = tmp_path / "run"
    folder = run / "checkpoints"
    # 1. Killed in the middle of an epoch, some time after checkpoint 2 was complete.
    process = _start([*KILL_FLAGS, "--epochs", "40", "--out", "run"], tmp_path)
    assert _wait_for(lambda: len(list_checkpoints(folder)) >= 2, process), process.stderr.read()
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()

    # 2. Resumed, then killed while it writes a checkpoint.
    before = {p.name for p in list_checkpoints(folder)}
    killed_mid_save = False
    process = _start(["--resume", "run", "--epochs", "40"], tmp_path)
    for _ in range(20):
        def saving():
            return any(p.name.startswith(".ckpt-") for p in folder.iterdir())
        if not _wait_for(saving, process):
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_mid_save = any(p.name.startswith(".ckpt-") for p in folder.iterdir())
        if killed_mid_save:
            break
        process = _start(["--resume", "run", "--epochs", "40"], tmp_path)
    assert killed_mid_save, "could not catch a save in progress"
    complete = list_checkpoints(folder)
    assert complete and complete[-1].name >= max(before)  # nothing complete was lost

    # 3. Every complete checkpoint restores, and resuming continues from the newest.
    config = Config.from_json(run / "config.json").replace(out_dir=str(run))
    steps = 25
    for checkpoint in complete:
        gan = build_gan(config)
        meta = restore_checkpoint(checkpoint, gan)
        assert meta["d_steps"] == meta["g_steps"] == meta["epoch"] * steps
    latest = complete[-1]
    seen = {}

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["iterations"] = int(_value(self.model.d_optimizer.iterations))
            seen["generator"] = [w.copy() for w in self.model.generator.get_weights()]
            self.model.stop_training = True

    epoch = read_meta(latest)["epoch"]
    _, history = train(config.replace(epochs=epoch + 1), resume=True, callbacks=[Capture()],
                       progress=False)
    assert history.epoch[0] == epoch
    assert seen["iterations"] == epoch * steps
    # The generator as saved in the newest checkpoint is the one training resumed with.
    with np.load(latest / "state.npz") as saved:
        expected = [saved[k] for k in sorted(saved.files) if k.startswith("generator/")]
    assert len(expected) == len(seen["generator"])
    for a, b in zip(expected, seen["generator"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not any(p.name.startswith(".ckpt-") for p in folder.iterdir())  # stale partial removed


def test_periodic_evaluation_logs_swd(tiny_demo, tmp_path):
    config = _small(tiny_demo, epochs=2, eval_every=1, eval_images=32, out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(r["swd"]["swd_x1e3_avg"] > 0 and r["n_fake"] == 32 for r in records)


def test_tensorboard_without_the_package_is_one_clear_line(tiny_demo, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # hidden, as if never installed
    assert importlib.util.find_spec("tensorboard") is None
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        train(_small(tiny_demo, tensorboard=True, out_dir=str(tmp_path / "run")), progress=False)
    assert not (tmp_path / "run").exists()


def test_tensorboard_true_writes_an_events_file(tiny_demo, tmp_path):
    pytest.importorskip("tensorboard")
    train(_small(tiny_demo, epochs=1, tensorboard=True, out_dir=str(tmp_path / "run")), progress=False)
    events = list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


def test_a_kill_between_an_epochs_log_row_and_its_checkpoint_logs_that_epoch_once(tiny_demo, tmp_path):
    """The row is written first; had the checkpoint not followed (a kill), the resume trains
    the epoch again and its row is in log.csv once, with the resumed run's numbers."""
    import shutil

    config = _small(tiny_demo, epochs=2, out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "ckpt-0002")  # as if killed before it
    before = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in before] == ["epoch", "1", "2"]
    _, history = train(config, resume=True, progress=False)
    assert history.epoch == [1]
    after = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in after] == ["epoch", "1", "2"] and after[:2] == before[:2]
