"""Training as a library function (the CLI and the notebook call `train`)."""

from __future__ import annotations

import importlib.util
import logging
import time

import keras
import numpy as np

from dcgan.training.callbacks import Checkpointer, DivergenceGuard, EpochLog, ProgressBar, SampleGrid
from dcgan.training.checkpoint import restore_checkpoint, tracker_variables, variable_value
from dcgan.training.clock import Clock, PlanLine, TimeBudget, WholeEpochs, duration, images_text
from dcgan.config import Config
from dcgan.data.pipeline import check_enough, data_identity, make_dataset, open_images
from dcgan.errors import CheckpointError, ConfigError
from dcgan.distribute import barrier, check_batch, data_shard, is_chief, process_count, use_devices
from dcgan.env import in_notebook, write_environment
from dcgan.evaluation.best import KeepBest
from dcgan.outputs.sampling import latents_for
from dcgan.training.gan import DCGAN
from dcgan.models.architectures import build_discriminator, build_generator
from dcgan.models.precision import dtype_policy, optimizer_for
from dcgan.outputs.folder import RunPaths, resolve_run
from dcgan.settings import Settings, resolve

SAMPLE_LATENT_SEED_OFFSET = 1_000_003  # sample latents differ from the training stream
log = logging.getLogger("dcgan.train")


def build_gan(config: Config, settings: Settings | None = None) -> DCGAN:
    """A compiled DCGAN for `config` (Adam for both networks), as `settings` say (default:
    this machine's, for one device)."""
    settings = settings or resolve(config, training=False)
    policy = settings.precision
    inside = {"data_format": settings.data_format,
              "synchronized_batch_norm": settings.synchronized_batch_norm}
    with dtype_policy(policy):
        generator = build_generator(config, **inside)
        discriminator = build_discriminator(config, **inside)
    gan = DCGAN(generator, discriminator,
                label_mode=config.label_mode, label_noise=config.label_noise,
                label_smoothing=config.label_smoothing, seed=config.seed, ema_decay=config.ema_decay,
                diffaugment=config.diffaugment, reuse_fakes=config.reuse_fakes, loss=config.loss,
                r1_gamma=config.r1_gamma, r1_interval=config.r1_interval,
                ada_target=config.ada_target, ada_kimg=config.ada_kimg)

    def adam(learning_rate):
        return optimizer_for(policy, keras.optimizers.Adam(learning_rate, config.beta_1,
                                                           config.beta_2))

    gan.compile(
        d_optimizer=adam(config.d_learning_rate), g_optimizer=adam(config.g_learning_rate),
        jit_compile=settings.jit_compile, steps_per_execution=settings.steps_per_execution,
    )
    return gan


def start_from(gan: DCGAN, spec: str) -> None:
    """Give `gan`'s generator (and its EMA) the weights of the trained generator `spec` (a
    .keras file, a run folder, a URL or a released name); one line if the layers differ."""
    from dcgan.outputs.sampling import load_generator

    trained = load_generator(spec)
    want = [tuple(w.shape) for w in gan.generator.weights]
    have = [tuple(w.shape) for w in trained.weights]
    if want != have:
        raise CheckpointError(
            f"--init-from {spec}: its generator ({int(trained.input_shape[-1])}-d latent, "
            f"{trained.output_shape[1]}x{trained.output_shape[2]}, {len(have)} weights) does not fit "
            f"this config's ({int(gan.generator.input_shape[-1])}-d latent, "
            f"{gan.generator.output_shape[1]}x{gan.generator.output_shape[2]}, {len(want)} weights); "
            "use the preset and sizes it was trained with")
    weights = trained.get_weights()
    gan.generator.set_weights(weights)
    if gan.ema_generator is not None:
        gan.ema_generator.set_weights(weights)
    log.info("the generator starts from %s (the discriminator from scratch)", spec)


def _live_view(paths: RunPaths, config: Config, steps: int, clock: Clock, grids: SampleGrid):
    from dcgan.training.live import LiveView  # lazy: IPython, only in a notebook

    return LiveView(paths, config.epochs, steps, config.batch_size, clock=clock, grids=grids)


def _identify(config: Config) -> str:
    """The identity of `config.data`'s images (a moved data folder resumes its run)."""
    return data_identity(open_images(config))


def _fit(gan, config: Config, images, callbacks: list, initial_epoch: int, initial_step: int,
         steps: int, first_batch: int):
    """gan.fit() from `initial_step` steps into epoch `initial_epoch`: a mid-epoch resume
    first runs the rest of that epoch (Keras starts epochs at their first step), then the
    other epochs; the data stream starts at global batch `first_batch` either way."""
    phases = []
    if initial_step:
        phases.append((initial_epoch + 1, initial_epoch, steps - initial_step))
        initial_epoch += 1
    if initial_epoch < config.epochs:
        phases.append((config.epochs, initial_epoch, steps))
    history = None
    for epochs, start, steps_now in phases:
        dataset, _ = make_dataset(config, first_batch=first_batch, images=images, shard=data_shard())
        done = gan.fit(dataset, epochs=epochs, initial_epoch=start, steps_per_epoch=steps_now,
                       callbacks=callbacks, verbose=0, shuffle=False)
        first_batch += (epochs - start) * steps_now
        if history is None:
            history = done
        else:  # one History for the whole call, as one fit() would give
            history.epoch += done.epoch
            for key, values in done.history.items():
                history.history.setdefault(key, []).extend(values)
        if gan.stop_training:
            break
    return history


def sample_latents(config: Config, paths: RunPaths, store: bool = True) -> np.ndarray:
    """The run's fixed sample latents: read from the run folder, or made (and, with `store`,
    stored there; the other processes of a multi-host run make the same ones)."""
    if paths.latents.exists():
        latents = np.load(paths.latents, allow_pickle=False)
        if latents.shape == (config.num_samples, config.latent_dim):
            return latents
    latents = latents_for(config.num_samples, config.latent_dim,
                          config.seed + SAMPLE_LATENT_SEED_OFFSET)
    if store:
        paths.samples.mkdir(parents=True, exist_ok=True)
        np.save(paths.latents, latents)
    return latents


def train(config: Config, resume: bool | str = False, overwrite: bool = False,
          allow_config_change: bool = False, callbacks: list | None = None,
          show_samples: bool | None = None, progress: bool | None = None,
          if_exists: str | None = None, live_view: bool | None = None):
    """Train (or resume) a DCGAN as `config` says; return (gan, history).

    When `config.out_dir` already holds a run: `resume=True` continues it (the CLI's
    --resume), `overwrite` replaces it; or, in the words of the notebook's IF_RUN_EXISTS,
    `if_exists` = "resume" (as saved), "resume_changed" (with this config's settings),
    "new_run" (in the next free `out_dir-2`, `-3`, ...) or "overwrite".  `live_view`
    (default: inside a notebook) shows one status line and the newest grid, redrawn in place.

    Writes to `config.out_dir` (see `dcgan.outputs.folder` for every file): `config.json`,
    `environment.json`, `samples/epoch_NNN.png` grids for fixed latents,
    `checkpoints/ckpt-EEEE/` (complete state, atomic) plus `generator.keras` /
    `discriminator.keras`, `log.csv`, `losses.png` and `progress.gif`.  In a multi-host
    run (dcgan.distribute.join_cluster) only the chief writes; all processes read.
    """
    started = time.monotonic()  # the time budget (`minutes`) counts from here
    config = config.validated()
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("tensorboard=True needs the tensorboard package: pip install tensorboard")
    settings = resolve(config)
    check_batch(config, settings.devices)  # refuse before a run is touched
    chief = is_chief()
    if process_count() > 1:  # all decide from the same folder before the chief changes it
        decided = resolve_run(config, resume, overwrite, allow_config_change, apply=False,
                              if_exists=if_exists, identify=_identify)
        barrier("dcgan: run resolved")
    if chief:
        decided = resolve_run(config, resume, overwrite, allow_config_change, if_exists=if_exists,
                              identify=_identify)
    requested = config
    config, checkpoint = decided
    if config != requested:  # resuming with the run's saved config
        settings = resolve(config)
    paths = RunPaths(config.out_dir)
    initial_epoch = initial_step = 0
    meta = {}
    carried = None
    keras.utils.set_random_seed(config.seed)
    with use_devices(settings.devices):  # before any Keras object of the run exists
        gan = build_gan(config, settings)
    if checkpoint is not None:
        try:
            meta = restore_checkpoint(checkpoint, gan)
        except CheckpointError as e:
            if if_exists == "resume_changed":  # e.g. new widths: the saved weights can't fit
                raise CheckpointError(f"{e}; the changed settings do not fit the saved networks: "
                                      'use IF_RUN_EXISTS = "new_run" for them') from None
            raise
        initial_epoch, initial_step = int(meta["epoch"]), int(meta.get("step", 0))
        if initial_step:  # mid-epoch: the epoch's running loss means go on from here
            carried = [(v, variable_value(v)) for v in tracker_variables(gan)]
        # The optimizers' learning rates are variables the checkpoint restored; a resume with
        # changed rates (--allow-config-change, the notebook's resume_changed) means the new ones.
        for optimizer, rate in ((gan.d_optimizer, config.d_learning_rate),
                                (gan.g_optimizer, config.g_learning_rate)):
            optimizer.learning_rate = rate
        latents = np.load(checkpoint / "latents.npy", allow_pickle=False)
        log.info("resuming %s from %s (epoch %d%s, %d steps)", paths.root, checkpoint.name,
                 initial_epoch, f" and {initial_step} steps into epoch {initial_epoch + 1}"
                 if initial_step else "", meta["d_steps"])
        if initial_epoch >= config.epochs:
            log.info("%s has already trained %d of %d epochs; pass --epochs N to go on",
                     paths.root, initial_epoch, config.epochs)
            return gan, None
    elif config.init_from:
        start_from(gan, config.init_from)
    images = open_images(config)  # once: opening a large source stats every file
    count = images.count
    check_enough(config, images)  # before the run folder is written
    if chief:
        paths.root.mkdir(parents=True, exist_ok=True)
        config.to_json(paths.config)
        write_environment(paths.environment, resolved=settings.as_dict())
    if checkpoint is None:
        latents = sample_latents(config, paths, store=chief)
    steps = config.steps_per_epoch or count // config.batch_size
    if initial_step >= steps:  # saved with a longer steps_per_epoch: that epoch is over
        initial_epoch, initial_step, carried = initial_epoch + 1, 0, None
    # The data's order is indexed by the global step (exact for any steps_per_epoch); older
    # checkpoints record none: they started each epoch's data afresh.
    first_batch = int(meta.get("global_step", initial_epoch * (count // config.batch_size)))
    clock = Clock(steps, config.batch_size, initial_epoch, initial_step,
                  global_step=first_batch,
                  images=int(meta.get("images", first_batch * config.batch_size)),
                  carried=carried, started=started)
    timed = process_count() == 1  # time-based saves and stops: one process decides alone
    if not timed and (config.checkpoint_minutes or config.sample_minutes or config.minutes):
        log.info("checkpoint_minutes, sample_minutes and minutes apply to one process; this "
                 "run of %d saves, draws and stops per epoch", process_count())
    real = images.read(np.arange(min(config.num_samples, count)))
    best_every = settings.best_every
    keep_best = ([KeepBest(config, paths, best_every, config.best_images, config.best_metric,
                           config.patience, save=chief)] if best_every else [])
    live = (in_notebook() if live_view is None else live_view) and chief
    checkpointer = [Checkpointer(paths, config, latents, every=config.checkpoint_every,
                                 keep=config.keep_checkpoints, clock=clock,
                                 minutes=config.checkpoint_minutes if timed else 0,
                                 data_identity=data_identity(images))] if chief else []
    epoch_log = EpochLog(paths, config.batch_size, steps, resumed_epoch=initial_epoch, clock=clock)
    writers = [  # the chief's; the other processes compute the samples and scores too
        epoch_log,
        ProgressBar(config.epochs, steps, config.batch_size, bar=progress, eta=not live,
                    leave=not live),
        *([keras.callbacks.TensorBoard(str(paths.tensorboard))] if config.tensorboard else []),
    ] if chief else []
    grids = SampleGrid(paths, latents, real, show=False if live else show_samples, save=chief,
                       clock=clock, minutes=config.sample_minutes if timed else 0)
    epoch_callbacks = [  # they see whole epochs only (a budget may stop one part-way)
        DivergenceGuard(paths.checkpoints, steps),
        grids,
        *keep_best,  # before EpochLog: its score and best epoch go into the epoch's row
        *writers,
        *checkpointer,  # after the epoch's log row: a resume drops rows past its checkpoint
        *([_live_view(paths, config, steps, clock, grids)] if live else []),  # after the curves
        *(callbacks or []),
    ]

    def stop_mid_epoch():  # the budget ran out inside an epoch: keep all of it
        for saver in checkpointer:
            saver.save_now()
        grids.render_now()

    all_callbacks = [
        clock,  # first: the others read where training is
        WholeEpochs(clock, epoch_callbacks),
        *([PlanLine(clock, settings.accelerator, settings.precision, config.epochs,
                    config.minutes if timed else 0)] if chief else []),
        TimeBudget(clock, config.minutes if timed else 0, config.epochs, save=stop_mid_epoch),
    ]
    log.info("%s", settings.describe())
    history = _fit(gan, config, images, all_callbacks, initial_epoch, initial_step, steps,
                   first_batch)
    if clock.stopped_by_budget:
        if chief:
            epoch_log.plots()  # the progress GIF with the grid drawn where it stopped
        log.info("stopped after %s of the %g-minute budget at %s (epoch %d of %d, step %d of "
                 "%d); to go on, resume the run (python -m dcgan train --resume %s, or run the "
                 "notebook's Train cell again)", duration(clock.elapsed()), config.minutes,
                 images_text(clock.images), clock.epoch + 1, config.epochs, clock.step, steps,
                 paths.root)
    return gan, history
