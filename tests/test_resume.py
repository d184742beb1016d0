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

from dcgan.outputs.folder import read_meta
from dcgan.training.checkpoint import restore_checkpoint
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
    return tiny_demo.replace(demo_images=64, **changes)


# Every feature that carries state through a resume, at once: spectral norm (its power-iteration
# vectors) with the hinge loss, lazy R1 with adaptive augmentation (p) and DiffAugment (its
# random stream), the EMA generator and BatchNorm's statistics (the demo preset's).
STATEFUL = dict(spectral_norm=True, loss="hinge", r1_gamma=1.0, r1_interval=2, ada_target=0.3,
                ada_kimg=0.1, diffaugment="color,translation,cutout")


@pytest.mark.backends
def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(tiny_demo, tmp_path):
    from dcgan.models.layers import SpectralNorm
    from dcgan.training.checkpoint import state_parts

    config = _small(tiny_demo, **STATEFUL)
    straight, history = train(config.replace(epochs=3, out_dir=str(tmp_path / "a")), progress=False)
    assert all(np.isfinite(v) for values in history.history.values() for v in values)
    train(config.replace(epochs=1, out_dir=str(tmp_path / "b")), progress=False)
    resumed, history = train(config.replace(epochs=3, out_dir=str(tmp_path / "b")), resume=True,
                             progress=False)
    assert history.epoch == [1, 2]  # epoch numbering continues
    assert int(_value(resumed.d_optimizer.iterations)) == 3 * 4  # 64 images / 16 per batch
    parts = state_parts(resumed)
    assert {"generator", "ema_generator", "discriminator", "ada", "random_state"} <= set(parts)
    for part, variables in state_parts(straight).items():  # every variable a checkpoint holds
        for a, b in zip(variables, parts[part], strict=True):
            np.testing.assert_array_equal(_value(a), _value(b), err_msg=f"{part}: {a.path}")
    u = [layer.vector_u for layer in resumed.discriminator.layers if isinstance(layer, SpectralNorm)]
    assert u and not np.allclose(_value(u[0]), 0)
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2", "3"]  # the log continues
    header, last = rows[0].split(","), rows[-1].split(",")  # p moved, and is logged per epoch
    assert float(last[header.index("ada_p")]) == pytest.approx(float(_value(resumed.ada_p))) != 0
    assert sorted(p.name for p in (tmp_path / "b" / "samples").glob("epoch_*.png")) == [
        f"epoch_{i:03d}.png" for i in range(4)]
    np.testing.assert_array_equal(np.load(tmp_path / "a/checkpoints/ckpt-0003/latents.npy"),
                                  np.load(tmp_path / "b/checkpoints/ckpt-0003/latents.npy"))
    # The exported discriminator (spectral norm inside) loads with safe_mode, same logits.
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    loaded = keras.saving.load_model(tmp_path / "b" / "checkpoints" / "discriminator.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(resumed.discriminator(x)), atol=1e-5)


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
    config = _small(tiny_demo, epochs=2, out_dir=str(run))
    train(config, progress=False)
    evaluate(run, n=16)
    (run / "tensorboard").mkdir()  # as --tensorboard true leaves it (the package is optional)
    (run / "tensorboard" / "events.out.tfevents.1").write_bytes(b"x")
    (run / "notes.txt").write_text("mine")  # things the user keeps in the folder
    (run / "mine").mkdir()
    (run / "mine" / "photo.png").write_bytes(b"x")
    started = time.time_ns()
    train(config.replace(epochs=1), overwrite=True, progress=False)
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


KILL_FLAGS = ["--preset", "demo", "--image-size", "16", "--g-widths", "16,8", "--batch-size", "8",
              "--demo-images", "64", "--steps-per-epoch", "8", "--num-samples", "4", "--r1-gamma", "0",
              "--jit-compile", "false"]  # no XLA compile per start


def _start(args, cwd, **env_changes):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_changes)
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
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_real_sigkill_mid_run_then_resume_goes_on_from_the_newest_checkpoint(tmp_path):
    """One real SIGKILL at an arbitrary moment (the kills at exact moments are the fault
    points below and tests/test_session.py's)."""
    run = tmp_path / "run"
    folder = run / "checkpoints"
    process = _start([*KILL_FLAGS, "--epochs", "60", "--out", "run"], tmp_path)
    assert _wait_for(lambda: len(list_checkpoints(folder)) >= 2, process), process.stderr.read()
    process.send_signal(signal.SIGKILL)
    process.wait()
    complete = list_checkpoints(folder)
    config = Config.from_json(run / "config.json").replace(out_dir=str(run))
    for checkpoint in complete:  # every complete checkpoint restores
        meta = restore_checkpoint(checkpoint, build_gan(config))
        assert meta["d_steps"] == meta["g_steps"] == meta["epoch"] * 8
    seen = {}

    class Capture(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["iterations"] = int(_value(self.model.d_optimizer.iterations))
            seen["generator"] = [w.copy() for w in self.model.generator.get_weights()]
            self.model.stop_training = True

    latest = complete[-1]
    epoch = read_meta(latest)["epoch"]
    _, history = train(config.replace(epochs=epoch + 1), resume=True, callbacks=[Capture()],
                       progress=False)
    assert history.epoch[0] == epoch and seen["iterations"] == epoch * 8
    with np.load(latest / "state.npz") as saved:  # training resumed with the newest generator
        expected = [saved[k] for k in sorted(saved.files) if k.startswith("generator/")]
    for a, b in zip(expected, seen["generator"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not any(p.name.startswith(".ckpt-") for p in folder.iterdir())  # stale partials removed


def test_a_kill_while_a_new_checkpoint_is_written_loses_nothing(tiny_demo, tmp_path):
    """Killed with checkpoint 2 written beside the others but not yet renamed in: the resume
    goes on from checkpoint 1 and ends where the uninterrupted run does."""
    straight, _ = train(_small(tiny_demo, epochs=3, out_dir=str(tmp_path / "a")), progress=False)
    flags = ["--preset", "demo", "--image-size", "16", "--g-widths", "32,16", "--batch-size", "16",
             "--demo-images", "64", "--num-samples", "16", "--r1-gamma", "0", "--jit-compile", "false",
             "--epochs", "3", "--out", "b"]  # the tiny_demo fixture's run (_small), from the CLI
    process = _start(flags, tmp_path, DCGAN_FAULT_AT="ckpt-0002:written")
    assert process.wait(timeout=300) == 137, process.stderr.read()
    folder = tmp_path / "b" / "checkpoints"
    assert [p.name for p in list_checkpoints(folder)] == ["ckpt-0001"]
    assert [p.name.split("-")[1] for p in folder.glob(".ckpt-0002.partial-*")] == ["0002.partial"]
    config = Config.from_json(tmp_path / "b" / "config.json").replace(out_dir=str(tmp_path / "b"))
    assert config.replace(out_dir=str(tmp_path / "a")) == _small(tiny_demo, epochs=3, out_dir=str(tmp_path / "a"))
    resumed, history = train(config, resume=True, progress=False)
    assert history.epoch == [1, 2]
    for a, b in zip(_state(straight), _state(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


SAVE_TWICE = """
import sys
import numpy as np
from dcgan.config import Config
from dcgan.training.checkpoint import save_checkpoint
from dcgan.training.loop import build_gan
config = Config.from_json(sys.argv[1])
gan = build_gan(config)
latents = np.zeros((4, config.latent_dim), np.float32)
save_checkpoint(sys.argv[2], gan, 1, config, latents)
import os
os.environ["DCGAN_FAULT_AT"] = "ckpt-0001:set aside"  # the same checkpoint saved again
save_checkpoint(sys.argv[2], gan, 1, config, latents, final=True)
"""


def test_a_kill_while_a_checkpoint_is_replaced_puts_the_old_one_back(tiny_demo, tmp_path):
    """Killed between the two renames of a replacement (the old checkpoint set aside, the new
    one not yet in): the next look at the run puts the old one back, whole."""
    from dcgan.outputs.folder import latest_intact_checkpoint

    tiny_demo.to_json(tmp_path / "config.json")
    folder = tmp_path / "checkpoints"
    result = subprocess.run([sys.executable, "-c", SAVE_TWICE, str(tmp_path / "config.json"), str(folder)],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 137, result.stderr[-3000:]
    assert list_checkpoints(folder) == [] and len(list(folder.glob(".ckpt-0001.old-*"))) == 1
    checkpoint = latest_intact_checkpoint(folder)
    assert checkpoint == folder / "ckpt-0001" and not read_meta(checkpoint)["final"]
    restore_checkpoint(checkpoint, build_gan(tiny_demo))  # whole: its files are as saved
    assert not list(folder.glob(".ckpt-0001.*"))


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
