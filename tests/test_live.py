"""The time-left estimate (Pace) and the notebook's live view, driven from Python."""

import numpy as np
import pytest

from dcgan.training.clock import Pace, duration
from dcgan.outputs.images import save_grid
from dcgan.outputs.folder import RunPaths


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_pace_skips_the_compiling_step_and_counts_whole_epochs(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("dcgan.training.callbacks.time.perf_counter", clock)
    pace = Pace(epochs=10, steps_per_epoch=100, batch_size=64)
    pace.epoch_begin(0)
    clock.now += 60  # the first step compiles for a minute
    pace.step_end(1)
    assert pace.summary() is None  # nothing timed yet: no made-up number
    for step in range(2, 51):
        clock.now += 0.5
        pace.step_end(step)
    # 49 steps in 24.5 s after the first: 2 steps/s, 128 img/s; 50 steps left in this epoch
    assert pace.steps_per_second() == pytest.approx(2.0)
    assert pace.seconds_left() == pytest.approx(25 + 9 * 50)
    assert pace.summary() == "128 img/s, 50 s per epoch, about 7.9 min left for 10 epochs"
    for step in range(51, 101):
        clock.now += 0.5
        pace.step_end(step)
    pace.epoch_end()
    # The session's first epoch (with compiling) never stands for the others.
    assert pace.seconds_per_epoch() == pytest.approx(50)
    pace.epoch_begin(1)
    for step in range(1, 101):
        clock.now += 0.5
        pace.step_end(step)
    clock.now += 20  # checkpoint and grids between epochs
    pace.epoch_end()
    assert pace.seconds_per_epoch() == pytest.approx(70)
    assert pace.seconds_left(after_epoch=True) == pytest.approx(8 * 70)
    assert "about 9.3 min left for 8 epochs" in pace.summary(after_epoch=True)


def test_durations_read_naturally():
    assert duration(0.44) == "0.4 s"
    assert [duration(s) for s in (42, 192, 1500, 4680, 86400)] == ["42 s", "3.2 min", "25 min", "1 h 18 min",
                                                             "24 h 0 min"]


class Handle:
    def __init__(self, log, index):
        self.log, self.index = log, index

    def update(self, content):
        self.log[self.index] = content


class Display:
    """IPython's display(..., display_id=True) as a notebook frontend sees it."""

    def __init__(self):
        self.outputs = []

    def __call__(self, content, display_id=False):
        assert display_id is True
        self.outputs.append(content)
        return Handle(self.outputs, len(self.outputs) - 1)


def test_live_view_redraws_one_status_and_one_picture_in_place(tmp_path):
    pytest.importorskip("IPython")
    from dcgan.training.live import LiveView

    paths = RunPaths(tmp_path / "run")
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    save_grid(paths.epoch_grid(0), images)
    display = Display()
    view = LiveView(paths, epochs=3, steps_per_epoch=20, batch_size=8, display=display)
    view.on_train_begin()
    assert "compiling the training step" in display.outputs[0].data
    assert "untrained generator" in display.outputs[1].data
    for epoch in range(3):
        view.on_epoch_begin(epoch)
        for batch in range(20):
            view.on_train_batch_end(batch, {"d_loss": 1.25, "g_loss": 0.75})
        save_grid(paths.epoch_grid(epoch + 1), images)
        view.on_epoch_end(epoch, {"d_loss": 1.0, "g_loss": 0.5})
        assert f"epoch {epoch + 1}" in display.outputs[1].data
    assert len(display.outputs) == 2  # a 3-epoch run still leaves one status, one picture
    assert "epoch 3/3 done" in view.last_status and "finished" in view.last_status
    assert "data:image/png;base64," in display.outputs[1].data


def test_live_view_shows_a_grid_drawn_inside_an_epoch_and_the_images_seen(tmp_path):
    pytest.importorskip("IPython")
    from dcgan.training.clock import Clock as RunClock
    from dcgan.training.live import LiveView

    paths = RunPaths(tmp_path / "run")
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    save_grid(paths.epoch_grid(0), images)

    class Grids:  # what SampleGrid tells the view: its newest grid and caption
        last_path = last_title = None

    clock, grids, display = RunClock(20, 8), Grids(), Display()
    view = LiveView(paths, epochs=2, steps_per_epoch=20, batch_size=8, display=display,
                    clock=clock, grids=grids)
    view.on_train_begin()
    clock.on_epoch_begin(0)
    view.on_epoch_begin(0)
    for batch in range(10):
        clock.on_train_batch_end(batch)
        if batch == 6:  # sample_minutes came round: a grid at 56 images
            grids.last_path = paths.step_grid(0, clock.images)
            grids.last_title = "epoch 1, step 7/20 (56 images seen)"
            save_grid(grids.last_path, images)
        view.on_train_batch_end(batch, {"d_loss": 1.0})
    assert "epoch 1, step 7/20 (56 images seen)" in display.outputs[1].data
    assert len(display.outputs) == 2  # redrawn in place
    view._status(view._status_text())
    assert "step 10/20, 80 images" in view.last_status
