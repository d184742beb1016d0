"""The best generator a run made, kept beside the last one (checkpoints/best/), and early stop."""

import csv
import json
import os

import numpy as np
import pytest

from dcgan.config import Config
from dcgan.errors import CheckpointError, ConfigError
from dcgan.evaluation.best import read_best, recover_best, save_best
from dcgan.outputs.folder import RunPaths, list_checkpoints
from dcgan.outputs.sampling import generate, load_generator
from dcgan.settings import resolve
from dcgan.training.loop import build_gan, train


def _small(tiny_demo, tmp_path, **changes):
    return tiny_demo.replace(demo_images=64, best_images=16,
                             out_dir=str(tmp_path / "run"), **changes)


def _rows(run):
    with open(run / "log.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.backends
def test_the_best_scoring_generator_is_kept_through_a_resume(tiny_demo, tmp_path):
    run = tmp_path / "run"
    config = _small(tiny_demo, tmp_path, epochs=3, best_every=1)
    train(config, progress=False)
    record = read_best(RunPaths(run))
    rows = _rows(run)
    scores = [float(r["swd"]) for r in rows]
    assert len(scores) == 3 and record["metric"] == "swd" and record["images"] == 16
    assert record["value"] == pytest.approx(min(scores), abs=1e-3)
    assert record["epoch"] == 1 + int(np.argmin(scores))
    assert [int(r["best_epoch"]) for r in rows][-1] == record["epoch"]
    assert record["floor"] is not None and record["floor"] > 0
    # Every file there loads; --best draws from it, not from the last generator.
    best = load_generator(run, best=True)
    latents = np.random.default_rng(0).normal(size=(4, config.latent_dim)).astype("float32")
    kept = load_generator(RunPaths(run).best / "generator_ema.keras")
    np.testing.assert_allclose(np.asarray(best.predict(latents, verbose=0)),
                               np.asarray(kept.predict(latents, verbose=0)), atol=1e-6)
    images = generate(run, n=4, out=tmp_path / "best.png", best=True)
    assert images.shape[0] == 4 and (tmp_path / "best.png").exists()

    train(config.replace(epochs=5), resume=True, progress=False)
    rows = _rows(run)
    scores = [float(r["swd"]) for r in rows]
    record = read_best(RunPaths(run))
    assert len(scores) == 5 and record["value"] == pytest.approx(min(scores), abs=1e-3)
    assert record["epoch"] == 1 + int(np.argmin(scores))


def test_patience_stops_a_run_that_no_longer_improves(tiny_demo, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="dcgan")
    # Learning rates near zero: the generator (and its average) stays as it is, so no score
    # after the first one is better.
    config = _small(tiny_demo, tmp_path, epochs=10, best_every=1, patience=2,
                    d_learning_rate=1e-12, g_learning_rate=1e-12)
    _, history = train(config, progress=False)
    assert history.epoch == [0, 1, 2]  # scores at 1 (best), 2 and 3 (no better): stop
    assert read_best(RunPaths(tmp_path / "run"))["epoch"] == 1
    assert "stopping early" in caplog.text
    final = list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    assert final.name == "ckpt-0003" and json.loads((final / "meta.json").read_text())["final"]


def test_patience_counts_on_across_a_resume(tiny_demo, tmp_path):
    """Scores without a better one are counted from the best epoch, so a run stopped and
    resumed stops where the uninterrupted one would (not `patience` scores later)."""
    config = _small(tiny_demo, tmp_path, epochs=2, best_every=1, patience=2,
                    d_learning_rate=1e-12, g_learning_rate=1e-12)
    train(config, progress=False)  # scores at 1 (best) and 2 (no better)
    _, history = train(config.replace(epochs=10), resume=True, progress=False)
    assert history.epoch == [2]  # epoch 3's score is the second without a better one: stop
    assert read_best(RunPaths(tmp_path / "run"))["epoch"] == 1


def test_best_every_auto_scores_five_times_a_run_of_five_epochs_or_more():
    assert resolve(Config.from_preset("demo", epochs=15)).best_every == 3
    assert resolve(Config.from_preset("seed128", epochs=25)).best_every == 5
    assert resolve(Config.from_preset("demo", epochs=4)).best_every == 0
    assert resolve(Config.from_preset("demo", epochs=4, best_every=1)).best_every == 1
    assert resolve(Config.from_preset("demo", epochs=40, best_every=0)).best_every == 0


@pytest.mark.parametrize("field, value", [("best_every", -2), ("patience", -1),
                                          ("best_metric", "lpips"), ("best_images", 8)])
def test_bad_best_settings_are_one_line(field, value):
    with pytest.raises(ConfigError, match=rf"config field {field}={value!r}") as error:
        Config.from_preset("demo", **{field: value})
    assert "\n" not in str(error.value)


def test_a_kill_during_a_save_of_the_best_leaves_the_previous_best(tiny_demo, tmp_path):
    config = _small(tiny_demo, tmp_path, epochs=1)
    paths = RunPaths(config.out_dir)
    gan = build_gan(config)
    save_best(paths, gan, {"epoch": 2, "metric": "swd", "value": 9.0, "floor": 1.0, "images": 16})
    assert sorted(p.name for p in paths.best.iterdir()) == ["best.json", "generator.keras",
                                                           "generator_ema.keras"]
    assert [p.name for p in paths.checkpoints.iterdir()] == ["best"]  # nothing left beside it
    # Killed between its two renames (the old best set aside, the new one not yet in place),
    # with a half-built folder of a process that is gone:
    dead = 2**22 + 12345
    os.replace(paths.best, paths.checkpoints / f".best.old-{dead}")
    (paths.checkpoints / f".best.partial-{dead}").mkdir()
    (paths.checkpoints / f".best.partial-{dead}" / "generator.keras").write_bytes(b"half")
    recover_best(paths)
    assert read_best(paths)["epoch"] == 2
    assert sorted(p.name for p in paths.checkpoints.iterdir()) == ["best"]
    load_generator(paths.best)  # loadable


def test_best_without_a_kept_generator_is_one_line(tiny_demo, tmp_path):
    train(_small(tiny_demo, tmp_path, epochs=1), progress=False)
    with pytest.raises(CheckpointError, match=r"no best generator kept there \(train with --best-every N"):
        load_generator(tmp_path / "run", best=True)


def test_the_notebooks_results_come_from_the_best_generator(tiny_demo, tmp_path, capsys):
    pytest.importorskip("IPython")
    from dcgan.apps import notebook as nb

    run = tmp_path / "run"
    train(_small(tiny_demo, tmp_path, epochs=2, best_every=1), progress=False)
    record = read_best(RunPaths(run))
    capsys.readouterr()
    nb.show_results(run)
    out = capsys.readouterr().out
    assert f"faces from the best generator: epoch {record['epoch']} (SWD " in out
    assert f"saved generator: {RunPaths(run).best / 'generator_ema.keras'}" in out
    nb.show_results(run, best=False)
    assert "best generator" not in capsys.readouterr().out


def test_a_data_set_smaller_than_best_images_is_scored_on_what_there_is(tiny_demo, tmp_path):
    from PIL import Image

    (tmp_path / "faces").mkdir()
    for i in range(40):
        Image.fromarray(np.full((20, 20, 3), 6 * i, np.uint8)).save(tmp_path / "faces" / f"{i}.png")
    config = _small(tiny_demo, tmp_path, epochs=1, best_every=1).replace(
        best_images=256, data=str(tmp_path / "faces"), cache_dir=str(tmp_path / "cache"))
    train(config, progress=False)
    record = read_best(RunPaths(tmp_path / "run"))
    assert record["images"] == 40 and record["floor"] is None  # too few for a disjoint second set


def _best_is_whole_and_not_older_than_the_log(run):
    """checkpoints/best/ (after the recovery a resume does) is either absent or complete, and
    holds the best epoch the log names or a newer one (saved before it is logged)."""
    paths = RunPaths(run)
    recover_best(paths)
    record = read_best(paths)
    logged = [int(r["best_epoch"]) for r in _rows(run) if r.get("best_epoch")] if paths.log.exists() else []
    if record is None:
        assert not paths.best.exists() and not logged
        return None
    assert record["epoch"] >= (logged[-1] if logged else 0)
    for name in ("generator.keras", "generator_ema.keras"):
        load_generator(paths.best / name)  # loads: never half-written
    return record


def test_a_kill_while_the_best_generator_is_swapped_in_keeps_a_whole_one(tmp_path):
    """The CLI killed at the two moments of replacing checkpoints/best/ (the new folder written
    beside it; the old one set aside, the new one not yet in), then resumed: the best folder is
    whole each time and as new as the log says, and training goes on."""
    import subprocess
    import sys

    from test_cli import user_env

    run = tmp_path / "run"
    args = [sys.executable, "-m", "dcgan", "train", "--preset", "demo", "--image-size", "16",
            "--g-widths", "16,8", "--batch-size", "16", "--demo-images", "64", "--num-samples", "4",
            "--epochs", "6", "--best-every", "1", "--best-images", "16", "--jit-compile", "false",
            "--out", str(run)]
    for stage in ("set aside", "written"):
        before = read_best(RunPaths(run))
        command = args if before is None else args[:4] + ["--resume", str(run)]
        result = subprocess.run(command, cwd=tmp_path, env=dict(user_env(), DCGAN_FAULT_AT=f"best:{stage}"),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 137, result.stderr[-3000:]  # killed there, as asked
        leftovers = {p.name.split("-")[0] for p in (run / "checkpoints").glob(".best.*")}
        assert leftovers == ({".best.old", ".best.partial"} if stage == "set aside" else {".best.partial"})
        record = _best_is_whole_and_not_older_than_the_log(run)
        assert record is not None and (before is None or record["epoch"] >= before["epoch"])
    result = subprocess.run(args[:4] + ["--resume", str(run)], cwd=tmp_path, env=user_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _best_is_whole_and_not_older_than_the_log(run) is not None
    assert not list((run / "checkpoints").glob(".best.*"))
