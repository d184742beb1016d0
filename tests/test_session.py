"""A Colab session's seams: kills inside epochs, a time budget, moved data, a lost config.json,
the images clock, grids inside epochs and the plan line."""

import logging
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from dcgan.outputs.folder import read_meta
from dcgan.training.clock import Clock, plan_text
from dcgan.data.pipeline import BatchReader
from dcgan.data.demo_faces import DemoImages
from dcgan.errors import CheckpointError
from dcgan.outputs.folder import RunPaths, list_checkpoints
from dcgan.training.loop import train
from test_resume import _state  # noqa: E402  (weights, EMA, optimizers, random stream)


def _rows(run):
    """log.csv without its timings (seconds, images/s: the only columns that may differ)."""
    header, *rows = (run / "log.csv").read_text().splitlines()
    keep = [i for i, name in enumerate(header.split(",")) if name not in ("seconds", "images_per_s")]
    return [[row.split(",")[i] for i in keep] for row in [header, *rows]]


def _config(tiny_demo, run, **changes):
    # 80 images in batches of 16: 5 batches a pass, and 3 steps an epoch, which does not divide it
    return tiny_demo.replace(**{"demo_images": 80, "steps_per_epoch": 3, "epochs": 3,
                                "jit_compile": "false", "out_dir": str(run), **changes})


class Killed(Exception):
    pass


class KillAfter(keras.callbacks.Callback):
    """Raise after `steps` training steps of this session (as a lost runtime would stop it)."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        self.steps -= 1
        if self.steps == 0:
            raise Killed


def _assert_same_run(straight, resumed, run_a, run_b):
    for a, b in zip(_state(straight), _state(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert _rows(run_a) == _rows(run_b)


@pytest.mark.backends
def test_kills_inside_and_between_epochs_then_resume_give_the_uninterrupted_run(tiny_demo, tmp_path):
    straight, _ = train(_config(tiny_demo, tmp_path / "a"), progress=False)
    # checkpoint_minutes this small: a checkpoint after every step, mid-epoch ones included
    config = _config(tiny_demo, tmp_path / "b", checkpoint_minutes=1e-9)
    kills = np.random.default_rng(7).integers(1, 4, size=3)  # steps per session, seeded
    positions = []
    for steps in kills:
        with pytest.raises(Killed):
            train(config, resume="auto", progress=False, callbacks=[KillAfter(int(steps))])
        newest = list_checkpoints(tmp_path / "b" / "checkpoints")[-1]
        meta = read_meta(newest)
        positions.append((meta["epoch"], meta["step"]))
        assert meta["images"] == meta["global_step"] * 16 and meta["data_identity"]
    assert any(step for _, step in positions), positions  # some kills fell inside an epoch
    resumed, history = train(config, resume="auto", progress=False)
    _assert_same_run(straight, resumed, tmp_path / "a", tmp_path / "b")
    assert history.epoch[-1] == 2
    names = [p.name for p in list_checkpoints(tmp_path / "b" / "checkpoints")]
    assert names == ["ckpt-0001", "ckpt-0002", "ckpt-0003"]  # mid-epoch ones superseded
    assert _rows(tmp_path / "b")[0][:2] == ["epoch", "kimg"]
    assert [r[1] for r in _rows(tmp_path / "b")[1:]] == ["0.048", "0.096", "0.144"]


@pytest.mark.backends
def test_a_time_budget_stops_after_a_checkpoint_and_resumes_finish_the_run(tiny_demo, tmp_path,
                                                                          caplog):
    straight, _ = train(_config(tiny_demo, tmp_path / "a", epochs=2), progress=False)
    config = _config(tiny_demo, tmp_path / "b", epochs=2, minutes=1e-9)  # spent at the first step
    caplog.set_level(logging.INFO, logger="dcgan")
    sessions = 0
    while sessions < 10:  # Run all, again and again, as a user with short sessions would
        sessions += 1
        gan, _ = train(config, resume="auto", progress=False)
        if list_checkpoints(tmp_path / "b" / "checkpoints")[-1].name == "ckpt-0002":
            break
    assert sessions == 6  # one step per session: 2 epochs of 3 steps
    _assert_same_run(straight, gan, tmp_path / "a", tmp_path / "b")
    stops = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped after")]
    assert len(stops) == 5 and all("--resume" in line for line in stops), stops
    # where the budget stopped it mid-epoch, a grid named by the images seen
    grids = sorted(p.name for p in (tmp_path / "b" / "samples").glob("epoch_*img.png"))
    assert grids == ["epoch_000_00000000016img.png", "epoch_000_00000000032img.png",
                     "epoch_001_00000000064img.png", "epoch_001_00000000080img.png"]
    assert Image.open(tmp_path / "b" / "progress.gif").n_frames == 3 + len(grids)


def _photos(folder, n=40, seed=0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def test_the_same_images_elsewhere_resume_the_run_and_other_images_are_refused(tiny_demo, tmp_path,
                                                                              caplog):
    first = _photos(tmp_path / "A")
    config = tiny_demo.replace(data=str(first), epochs=1, jit_compile="false",
                               out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    moved = tmp_path / "B"
    shutil.copytree(first, moved)  # e.g. Kaggle's mount one day, a download folder the next
    shutil.rmtree(first)
    for image in moved.iterdir():  # copies carry new times
        image.touch()
    caplog.set_level(logging.INFO, logger="dcgan")
    _, history = train(config.replace(data=str(moved), epochs=2), if_exists="resume", progress=False)
    assert history.epoch == [1]
    assert any(f"now come from {moved}" in r.getMessage() for r in caplog.records)
    assert RunPaths(tmp_path / "run").config.read_text().count(str(moved)) == 1
    other = _photos(tmp_path / "C", seed=1)
    with pytest.raises(CheckpointError, match=r"other settings: data"):
        train(config.replace(data=str(other), epochs=3), if_exists="resume", progress=False)


def test_a_missing_config_json_resumes_from_the_checkpoints_and_deletes_none(tiny_demo, tmp_path):
    config = tiny_demo.replace(demo_images=64, epochs=2, jit_compile="false",
                               out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    paths = RunPaths(tmp_path / "run")
    paths.config.unlink()  # a half-synced Drive folder
    _, history = train(config.replace(epochs=3), if_exists="resume", progress=False)
    assert history.epoch == [2]
    assert [p.name for p in list_checkpoints(paths.checkpoints)] == ["ckpt-0001", "ckpt-0002",
                                                                     "ckpt-0003"]
    assert paths.config.exists()


def test_a_grid_inside_an_epoch_is_named_by_the_images_seen(tiny_demo, tmp_path):
    config = tiny_demo.replace(demo_images=64, epochs=1, jit_compile="false", sample_minutes=1e-9,
                               out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    names = sorted(p.name for p in (tmp_path / "run" / "samples").glob("epoch_*.png"))
    # a grid after steps 1-3 (the 4th is the epoch's end, which has its own)
    assert names == ["epoch_000.png", "epoch_000_00000000016img.png",
                     "epoch_000_00000000032img.png", "epoch_000_00000000048img.png",
                     "epoch_001.png"]


def test_the_data_order_is_indexed_by_the_global_step():
    images = DemoImages(40, 16, 0)
    whole = BatchReader(images, 8, seed=3)  # 5 batches a pass
    later = BatchReader(images, 8, seed=3, first_batch=7)
    for b in range(8):  # across the second pass's end and into the third
        np.testing.assert_array_equal(later.indices(b), whole.indices(b + 7))
    assert sorted(np.concatenate([whole.indices(b) for b in range(5, 10)])) == list(range(40))


def test_the_plan_line_says_the_epoch_the_run_and_where_the_budget_stops_it():
    clock = Clock(steps_per_epoch=2530, batch_size=64, started=0.0)  # CelebA's 162k in batches of 64
    clock.elapsed = lambda: 60.0  # a minute gone (compiling)
    text = plan_text(clock, 290 / 64, "Tesla T4", "mixed_float16", epochs=25, minutes=90)
    assert text.startswith("Tesla T4, mixed_float16: 290 img/s; an epoch takes 9.3 min; "
                           "25 epochs would take 3 h 53 min; minutes=90 stops after ")
    # 89 minutes left at 290 img/s: 1.55 M images, 9.6 epochs of 161,920
    assert text.endswith("stops after 1.55 M images (9.6 epochs)"), text
    assert plan_text(clock, 290 / 64, "Tesla T4", "mixed_float16", 1, 90).endswith(
        "minutes=90 leaves room for all of it")


def test_the_plan_line_appears_once_with_the_measured_pace(tiny_demo, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dcgan")
    config = tiny_demo.replace(demo_images=32 * 16, epochs=2, jit_compile="false", minutes=600,
                               out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    plans = [r.getMessage() for r in caplog.records if r.getMessage().startswith("plan: ")]
    assert len(plans) == 1, plans
    assert "minutes=600 leaves room for all of it" in plans[0]
    planned = float(plans[0].split(": ")[2].split(" img/s")[0].replace(",", ""))
    header, *rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    measured = float(rows[-1].split(",")[header.split(",").index("images_per_s")])
    # the same pace, within what two timings of a shared 2-core machine spread
    assert 0.33 < planned / measured < 3, (planned, measured)


def test_auto_picks_jax_on_a_gpu_where_jax_has_cuda_else_tensorflow(tmp_path, monkeypatch):
    pytest.importorskip("jax")
    from dcgan import env

    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setattr(env, "on_tpu_runtime", lambda: False)
    monkeypatch.setattr(env, "on_nvidia_gpu_host", lambda: True)  # as /dev/nvidia0 says on Colab
    monkeypatch.setattr(env, "auto_reason", None)
    plugin_names = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_plugins")
    if any(__import__("importlib").util.find_spec(n) for n in plugin_names):
        pytest.skip("this machine's JAX has a CUDA plugin")
    assert env.auto_backend() == "tensorflow" and "JAX has no CUDA" in env.auto_reason
    (tmp_path / "jax_cuda12_plugin").mkdir()  # what Colab's jax[cuda12] installs, by name
    (tmp_path / "jax_cuda12_plugin" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert env.auto_backend() == "jax" and "JAX with CUDA" in env.auto_reason
    monkeypatch.setattr(env, "on_nvidia_gpu_host", lambda: False)  # a CPU runtime
    assert env.auto_backend() == "tensorflow"
