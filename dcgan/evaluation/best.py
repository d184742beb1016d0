"""The best generator of a run: KeepBest scores the sampling generator every few epochs during
training and keeps the best one so far in `checkpoints/best/` (swapped in atomically), with
patience (early stopping) counted across resumes."""

from __future__ import annotations

import json
import logging

import keras

from dcgan.config import Config
from dcgan.data.pipeline import open_images
from dcgan.evaluation.scoring import evaluate_images, real_sets, score, score_value
from dcgan.models.precision import float32_copy
from dcgan.outputs.folder import RunPaths, new_folder, recover_folder

log = logging.getLogger("dcgan.eval")


def read_best(paths: RunPaths) -> dict | None:
    """The record of the best generator kept in `paths.best` (None if there is none)."""
    try:
        record = json.loads(paths.best_record.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "value" in record else None


def save_best(paths: RunPaths, gan, record: dict) -> None:
    """Replace `checkpoints/best/` with `gan`'s generators and `record`, atomically: the
    folder is built beside it, then swapped in by two renames; a kill between them leaves
    the previous best as `.best.old-PID`, which `recover_best` puts back (outputs.folder's
    `new_folder`, as for checkpoints)."""
    with new_folder(paths.best) as partial:
        for network in (gan.generator, gan.ema_generator):
            if network is not None:  # written in float32 whatever the training precision
                float32_copy(network).save(partial / f"{network.name}.keras")
        (partial / paths.best_record.name).write_text(json.dumps(record, indent=1) + "\n")


def recover_best(paths: RunPaths) -> None:
    """Undo what a kill during `save_best` left: put a set-aside best back if the new one
    never arrived, and remove half-built ones."""
    if recover_folder(paths.best):
        log.info("%s: put back the best generator a save interrupted", paths.best)


class KeepBest(keras.callbacks.Callback):
    """Every `every` epochs, score the sampling (EMA) generator on `n` images and keep the best
    one so far in `checkpoints/best/` (with `best.json`: epoch, metric, value, floor); after
    `patience` scores without a better one (0: never), stop training.

    The score and the best epoch go into the epoch's logs (log.csv, the live view), then
    into the log.  `save=False`: score and decide, write nothing (a multi-host run's other
    processes, which take part in the same computations)."""

    def __init__(self, config: Config, paths: RunPaths, every: int, n: int, metric: str = "swd",
                 patience: int = 0, save: bool = True):
        super().__init__()
        self.config, self.paths, self.every, self.n = config, paths, every, n
        self.metric, self.patience, self.save = metric, patience, save
        self.best, self.since_best = None, 0
        self.real = self.floor = None

    def on_train_begin(self, logs=None):
        if getattr(self, "real", None) is not None:  # a mid-epoch resume calls fit() twice
            return
        # A small data set is scored on all of its images (with no floor below 2n of them).
        self.n = min(self.n, open_images(self.config).count)
        self.real, floor_set = real_sets(self.config, self.n)
        # The real-vs-real floor does not change during the run: scored once, here.
        self.floor = (score_value(evaluate_images(self.real, floor_set, (self.metric,)),
                                  self.metric)[0] if floor_set is not None else None)
        if self.save:
            recover_best(self.paths)
        record = read_best(self.paths)
        # A best scored another way (metric, image count) does not compare: start anew.
        if record and (record.get("metric"), record.get("images")) == (self.metric, self.n):
            self.best = record

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        results = score(self.model.sampling_generator, self.real, None, (self.metric,))
        value, floor = score_value(results, self.metric)[0], self.floor
        if self.best is None or value < self.best["value"]:
            self.best = {"epoch": epoch + 1, "metric": self.metric, "value": round(value, 4),
                         "floor": floor, "images": self.n}
            if self.save:  # saved before the score is logged: no log names a best not kept
                save_best(self.paths, self.model, self.best)
        # Scores come every `every` epochs: those since the best one, counted from the epochs
        # themselves, so a resumed run goes on counting where it stopped.
        self.since_best = (epoch + 1 - self.best["epoch"]) // self.every
        if logs is not None:
            logs[self.metric] = value
            logs["best_epoch"] = self.best["epoch"]
        if self.save:
            log.info("epoch %d: %s %.3f%s; best: epoch %d (%.3f); scored in %.1f s", epoch + 1,
                     self.metric.upper(), value,
                     f" (real-vs-real {floor:.3f})" if floor is not None else "",
                     self.best["epoch"], self.best["value"], results["seconds"])
        if self.patience and self.since_best >= self.patience:
            self.model.stop_training = True
            if self.save:
                log.info("no better %s in %d scores since epoch %d: stopping early; the best "
                         "generator is in %s", self.metric.upper(), self.since_best,
                         self.best["epoch"], self.paths.best)
