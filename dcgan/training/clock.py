"""Where a training run is and how its time goes: images seen, the pace, the plan, the budget.

`Clock` is the first callback of a run: it counts steps inside the epoch and images seen
across resumes (the run's clock, like StyleGAN's kimg), and the other callbacks read it.
`WholeEpochs` hands epoch ends only to callbacks that mean a whole epoch (a run stopped
mid-epoch by its time budget has none).  `PlanLine` says once, after the first timed steps,
how long the run will take; `TimeBudget` stops it at `minutes`, after a checkpoint.
"""

from __future__ import annotations

import logging
import time

import keras

log = logging.getLogger("dcgan.train")


def images_text(images: int) -> str:
    """'960 images', '153.6 k images', '1.57 M images'."""
    if images < 10_000:
        return f"{images:,} images"
    if images < 1_000_000:
        return f"{images / 1000:.1f} k images"
    return f"{images / 1e6:.2f} M images"


class Clock(keras.callbacks.Callback):
    """The run's position: `epoch` (0-based, the one in progress), `step` (steps done in it),
    `global_step` and `images` (seen since the run began, resumes included).

    A run resumed from a mid-epoch checkpoint starts its first `fit()` that many steps into
    the epoch (`step`); Keras numbers that fit's batches from 0, the clock adds the offset.
    `carried`: the loss trackers' values saved mid-epoch, put back when that epoch starts
    (Keras resets them first), so the epoch's log row is the uninterrupted run's.
    `started`: when the session began (time.monotonic), for the budget and the plan."""

    def __init__(self, steps_per_epoch: int, batch_size: int, epoch: int = 0, step: int = 0,
                 global_step: int = 0, images: int = 0, carried=None, started: float | None = None):
        super().__init__()
        self.steps, self.batch_size = steps_per_epoch, batch_size
        self.epoch, self.step, self.offset = epoch, step, step
        self.global_step, self.images = global_step, images
        self.resumed = global_step > 0
        self.carried = carried
        self.started = time.monotonic() if started is None else started
        self.stopped_by_budget = False

    @property
    def epoch_done(self) -> bool:
        return self.step >= self.steps

    @property
    def kimg(self) -> float:
        return self.images / 1000

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def position(self) -> dict:
        """What a checkpoint records of it."""
        return {"global_step": self.global_step, "images": self.images}

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epoch or self.step >= self.steps:  # a new epoch (not the resumed one)
            self.epoch, self.step, self.offset = epoch, 0, 0
        if self.carried is not None:
            for variable, value in self.carried:
                variable.assign(value)
            self.carried = None

    def on_train_batch_end(self, batch, logs=None):
        step = self.offset + batch + 1
        done, self.step = step - self.step, step
        self.global_step += done
        self.images += done * self.batch_size


class WholeEpochs(keras.callbacks.Callback):
    """`callbacks` as Keras would call them, except that the end of an epoch cut short (the
    time budget stopped the run mid-epoch) is not passed on: grids, log rows, scores and
    checkpoints of an epoch mean the whole epoch."""

    def __init__(self, clock: Clock, callbacks: list):
        super().__init__()
        self.clock, self.callbacks = clock, list(callbacks)

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def _each(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def on_train_begin(self, logs=None):
        self._each("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._each("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._each("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.clock.epoch_done:
            self._each("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._each("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._each("on_train_batch_end", batch, logs)


class Every:
    """True once `minutes` have passed since the last time it was (0: never)."""

    def __init__(self, minutes: float):
        self.seconds = float(minutes) * 60
        self.last = time.monotonic()

    def due(self) -> bool:
        if self.seconds <= 0 or time.monotonic() - self.last < self.seconds:
            return False
        self.last = time.monotonic()
        return True

    def reset(self) -> None:
        self.last = time.monotonic()


class Pace:
    """How fast a run goes and how long it has left, from the steps timed so far.

    The first step of a session compiles the training step (seconds to minutes), so timing
    starts after it.  Whole epochs, once timed, include what happens between epochs
    (checkpoints, grids); before that, the per-step rate stands for the epoch."""

    MIN_TIMED_STEPS = 5

    def __init__(self, epochs: int, steps_per_epoch: int, batch_size: int):
        self.epochs, self.steps, self.batch_size = epochs, steps_per_epoch, batch_size
        self.epoch, self.step = 0, 0
        self.timed_from = None  # (time, steps done) after the session's first step
        self.done_steps = 0
        self.epoch_seconds: list[float] = []  # whole epochs after the session's first
        self.epoch_started = None
        self.first_epoch = None

    def epoch_begin(self, epoch: int) -> None:
        self.epoch, self.step, self.epoch_started = epoch, 0, time.perf_counter()
        if self.first_epoch is None:
            self.first_epoch = epoch

    def step_end(self, step: int) -> None:
        """`step`: steps done in this epoch (1-based)."""
        self.done_steps += step - self.step
        self.step = step
        if self.timed_from is None:
            self.timed_from = (time.perf_counter(), self.done_steps)

    def epoch_end(self) -> None:
        if self.epoch != self.first_epoch:
            self.epoch_seconds.append(time.perf_counter() - self.epoch_started)

    @property
    def timed_steps(self) -> int:
        return self.done_steps - self.timed_from[1] if self.timed_from else 0

    def steps_per_second(self) -> float | None:
        if self.timed_steps < self.MIN_TIMED_STEPS:
            return None
        return self.timed_steps / max(time.perf_counter() - self.timed_from[0], 1e-9)

    def seconds_per_epoch(self) -> float | None:
        if self.epoch_seconds:
            recent = self.epoch_seconds[-3:]
            return sum(recent) / len(recent)
        rate = self.steps_per_second()
        return self.steps / rate if rate else None

    def seconds_left(self, after_epoch: bool = False) -> float | None:
        """Time to the end of the run; `after_epoch`: the current epoch is finished."""
        per_epoch, rate = self.seconds_per_epoch(), self.steps_per_second()
        if per_epoch is None:
            return None
        if after_epoch:
            return (self.epochs - self.epoch - 1) * per_epoch
        rest_of_epoch = (self.steps - self.step) / rate if rate else per_epoch
        return rest_of_epoch + (self.epochs - self.epoch - 1) * per_epoch

    def summary(self, after_epoch: bool = False) -> str | None:
        """'412 img/s, 3.2 min per epoch, about 1 h 18 min left for 24 epochs' (None until
        enough steps are timed)."""
        rate, left = self.steps_per_second(), self.seconds_left(after_epoch)
        if rate is None or left is None:
            return None
        epochs_left = self.epochs - self.epoch - (1 if after_epoch else 0)
        return (f"{rate * self.batch_size:,.0f} img/s, {duration(self.seconds_per_epoch())} per "
                f"epoch, about {duration(left)} left for {epochs_left} epoch"
                f"{'' if epochs_left == 1 else 's'}")


def duration(seconds: float) -> str:
    """'0.4 s', '42 s', '3.2 min', '25 min', '1 h 18 min'."""
    if seconds < 9.95:  # a tiny run's epoch: not '0 s'
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3570:
        return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"



class PlanLine(keras.callbacks.Callback):
    """One line, once the first steps after compilation are timed: the device, precision,
    img/s, an epoch's time, the whole run's, and where `minutes` will stop it, e.g.
    'Tesla T4, mixed_float16: 290 img/s; an epoch takes 12 min; 25 epochs would take 4.9 h;
    minutes=90 stops after 1.57 M images (7.7 epochs)'."""

    TIMED_STEPS = 20  # after the compiling first step; or the first epoch's end, if sooner

    def __init__(self, clock: Clock, device: str, precision: str, epochs: int, minutes: float = 0):
        super().__init__()
        self.clock, self.device, self.precision = clock, device, precision
        self.epochs, self.minutes = epochs, float(minutes)
        self.timed_from = None  # (time, global step) after the first step
        self.line = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if self.timed_from is None:
            self.timed_from = (now, self.clock.global_step)
            return
        timed = self.clock.global_step - self.timed_from[1]
        if self.line is None and (timed >= self.TIMED_STEPS or self.clock.epoch_done):
            self.announce(timed / max(now - self.timed_from[0], 1e-9))

    def announce(self, steps_per_second: float) -> str:
        self.line = plan_text(self.clock, steps_per_second, self.device, self.precision,
                              self.epochs, self.minutes)
        log.info("plan: %s", self.line)
        return self.line


def plan_text(clock: Clock, steps_per_second: float, device: str, precision: str, epochs: int,
              minutes: float = 0) -> str:
    """The plan line's words for a run at `steps_per_second` (see PlanLine)."""
    rate = steps_per_second * clock.batch_size
    epoch_s = clock.steps / steps_per_second
    steps_left = (epochs - clock.epoch) * clock.steps - clock.step
    left_s = steps_left / steps_per_second
    epochs_left = steps_left / clock.steps
    run = (f"the {epochs_left:.1f} epochs left would take" if clock.resumed else
           f"{epochs} epoch{'' if epochs == 1 else 's'} would take")
    text = (f"{device}, {precision}: {rate:,.0f} img/s; an epoch takes {duration(epoch_s)}; "
            f"{run} {duration(left_s)}")
    if minutes > 0:
        budget_left_s = max(minutes * 60 - clock.elapsed(), 0.0)
        if budget_left_s >= left_s:
            text += f"; minutes={minutes:g} leaves room for all of it"
        else:
            steps_more = int(budget_left_s * steps_per_second)
            at_images = clock.images + steps_more * clock.batch_size
            at_epochs = (clock.epoch * clock.steps + clock.step + steps_more) / clock.steps
            text += (f"; minutes={minutes:g} stops after {images_text(at_images)} "
                     f"({at_epochs:.1f} epochs)")
    return text


class TimeBudget(keras.callbacks.Callback):
    """Stop at the first step past `minutes` of this session (0: no budget): a checkpoint (and
    a grid, if mid-epoch) first, via `save()`; then Keras ends the run."""

    def __init__(self, clock: Clock, minutes: float, epochs: int, save=None):
        super().__init__()
        self.clock, self.seconds, self.epochs, self.save = clock, float(minutes) * 60, epochs, save

    def on_train_batch_end(self, batch, logs=None):
        clock = self.clock
        if self.seconds <= 0 or clock.elapsed() < self.seconds or clock.stopped_by_budget:
            return
        if clock.epoch_done and clock.epoch + 1 >= self.epochs:  # the run's last step anyway
            return
        self.clock.stopped_by_budget = True
        self.model.stop_training = True
        if not self.clock.epoch_done and self.save is not None:  # an epoch's end saves itself
            self.save()
