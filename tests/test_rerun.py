"""Re-running a run the way a notebook user means it (IF_RUN_EXISTS), and resuming past a
checkpoint damaged after it was written."""

import json
import logging

import numpy as np
import pytest

from dcgan.outputs.folder import read_meta
from dcgan.errors import CheckpointError
from dcgan.outputs.folder import list_checkpoints, next_free_folder
from dcgan.training.loop import train


def _small(tiny_demo, tmp_path, **changes):
    return tiny_demo.replace(demo_images=64, out_dir=str(tmp_path / "run"),
                             **changes)


def _rows(run):
    return [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]]


def test_each_if_exists_choice_does_what_it_says(tiny_demo, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dcgan")
    run = tmp_path / "run"
    train(_small(tiny_demo, tmp_path, epochs=1), progress=False, if_exists="resume")
    tweaked = _small(tiny_demo, tmp_path, epochs=2, d_learning_rate=3e-4)

    # resume: the settings differ, so it stops with one line in the notebook's words
    with pytest.raises(CheckpointError) as error:
        train(tweaked, progress=False, if_exists="resume")
    message = str(error.value)
    assert "d_learning_rate (0.0002 -> 0.0003)" in message and 'IF_RUN_EXISTS = "resume_changed"' in message
    assert "--" not in message and "\n" not in message
    assert _rows(run) == ["1"]  # nothing touched

    # resume with only a longer run: continues as saved
    train(_small(tiny_demo, tmp_path, epochs=2), progress=False, if_exists="resume")
    assert _rows(run) == ["1", "2"]

    # resume_changed: continues from epoch 2 with the new learning rate, saying what changed
    caplog.clear()
    train(tweaked.replace(epochs=3), progress=False, if_exists="resume_changed")
    assert _rows(run) == ["1", "2", "3"]
    assert json.loads((run / "config.json").read_text())["d_learning_rate"] == 3e-4
    assert "d_learning_rate  0.0002 -> 0.0003" in caplog.text

    # new_run: a fresh folder beside it; the old run is untouched
    train(tweaked.replace(epochs=1), progress=False, if_exists="new_run")
    assert _rows(tmp_path / "run-2") == ["1"] and _rows(run) == ["1", "2", "3"]
    assert next_free_folder(run) == tmp_path / "run-3"

    # overwrite: the old run is gone, a new one in its place
    train(tweaked.replace(epochs=1), progress=False, if_exists="overwrite")
    assert _rows(run) == ["1"] and [c.name for c in list_checkpoints(run / "checkpoints")] == ["ckpt-0001"]

    with pytest.raises(CheckpointError, match=r"IF_RUN_EXISTS = 'again': choose one of resume, "):
        train(tweaked, progress=False, if_exists="again")


def test_changed_widths_under_resume_changed_say_to_start_a_new_run(tiny_demo, tmp_path):
    train(_small(tiny_demo, tmp_path, epochs=1), progress=False)
    with pytest.raises(CheckpointError, match=r'do not fit the saved networks: use IF_RUN_EXISTS = "new_run"'):
        train(_small(tiny_demo, tmp_path, epochs=2, g_widths=(16, 8)), progress=False,
              if_exists="resume_changed")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_resume_passes_over_a_damaged_newest_checkpoint(tiny_demo, tmp_path, caplog, damage):
    caplog.set_level(logging.INFO, logger="dcgan")
    config = _small(tiny_demo, tmp_path, epochs=2)
    train(config, progress=False)
    newest = tmp_path / "run" / "checkpoints" / "ckpt-0002"
    recorded = read_meta(newest)["files"]
    assert set(recorded) == {"state.npz", "latents.npy", "config.json"}
    state = newest / "state.npz"
    data = bytearray(state.read_bytes())
    if damage == "truncate":  # a half-synced Drive copy
        data = data[: len(data) // 2]
    else:  # one flipped bit, same size
        data[len(data) // 3] ^= 0x10
    state.write_bytes(bytes(data))

    _, history = train(config.replace(epochs=3), resume=True, progress=False)
    assert history.epoch == [1, 2]  # from the intact epoch-1 checkpoint
    assert "skipping" in caplog.text and "ckpt-0002: damaged" in caplog.text
    assert list_checkpoints(tmp_path / "run" / "checkpoints")[-1].name == "ckpt-0003"


def test_resume_stops_with_one_line_when_every_checkpoint_is_damaged(tiny_demo, tmp_path):
    config = _small(tiny_demo, tmp_path, epochs=1)
    train(config, progress=False)
    state = tmp_path / "run" / "checkpoints" / "ckpt-0001" / "state.npz"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"every checkpoint is damaged \(1, newest ckpt-0001\)") as error:
        train(config.replace(epochs=2), resume=True, progress=False)
    assert "\n" not in str(error.value)
    assert state.stat().st_size == 100  # nothing deleted: the user may have an intact copy


def test_checkpoints_record_the_package_version(tiny_demo, tmp_path):
    import dcgan

    train(_small(tiny_demo, tmp_path, epochs=1), progress=False)
    meta = read_meta(tmp_path / "run" / "checkpoints" / "ckpt-0001")
    assert meta["dcgan"] == dcgan.__version__
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in meta["files"].values())
    assert np.load(tmp_path / "run" / "checkpoints" / "ckpt-0001" / "latents.npy").shape[0] == 16
