"""Every "auto" in one place: a `Config` plus this machine -> one frozen `Settings`.

A run resolves its settings once (`resolve`), logs them once and stores them in
`environment.json` under "resolved"; everything else reads them.  The tables below are
what measured fastest (docs/speed.md, `python benchmarks/train_speed.py`); a measurement
that says otherwise lands as an entry in them.  `Config` has validated each field already:
nothing here validates it again, except what depends on the machine (how many devices
there are, what a backend can do).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import keras

from dcgan.config import Config
from dcgan.distribute import MULTI_DEVICE_BACKENDS, local_device_count, process_count
from dcgan.errors import ConfigError
from dcgan.hardware import Accelerator, local_accelerator

log = logging.getLogger("dcgan.train")

# jit_compile="auto" per (backend, platform): XLA on TensorFlow and JAX; eager on PyTorch
# (torch.compile was no faster, and slower on a GPU).  TensorFlow on GPUs and TPUs is
# unmeasured; XLA is what Keras and JAX pick there.
AUTO_JIT = {("tensorflow", "cpu"): True, ("tensorflow", "gpu"): True,
            ("jax", "cpu"): True, ("jax", "gpu"): True, ("jax", "tpu"): True,
            ("torch", "cpu"): False, ("torch", "gpu"): False}


@dataclass(frozen=True)
class Settings:
    """What a run's `auto` fields mean on this machine, and what the machine is."""

    backend: str
    accelerator: str  # the device's name, e.g. "NVIDIA H200" or "CPU (2 cores)"
    platform: str  # "cpu", "gpu" or "tpu"
    devices: int  # data-parallel devices this process trains on
    precision: str  # a Keras dtype policy: float32, mixed_float16, mixed_bfloat16
    jit_compile: bool
    steps_per_execution: int
    data_format: str  # the networks' inner layout
    min_image_side: int  # images with a shorter side are skipped (0: none)
    best_every: int  # epochs between scores of the kept best generator (0: none kept)

    @property
    def synchronized_batch_norm(self) -> bool:
        """BatchNorm must average its statistics over replicas: under tf.distribute each
        replica sees its slice (JAX's DataParallel runs one program over the global batch)."""
        return self.backend == "tensorflow" and self.devices > 1

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for the log."""
        hosts = f" over {process_count()} processes" if process_count() > 1 else ""
        spread = f" x {self.devices} (data-parallel{hosts})" if self.devices > 1 else ""
        from dcgan import env  # why this backend (auto_backend's reason), when it chose

        why = f" ({env.auto_reason})" if env.auto_reason and env.auto_reason != "KERAS_BACKEND" else ""
        return (f"Keras on {self.backend}{why}, {self.accelerator}{spread}: precision "
                f"{self.precision}, compiled step "
                f"{'on' if self.jit_compile else 'off'}, {self.steps_per_execution} step(s) per "
                f"call, {self.data_format}")


def resolve(config: Config, accelerator: Accelerator | None = None,
            training: bool = True) -> Settings:
    """`config`'s settings on this machine.  `training=False` (sampling, evaluating a saved
    run): one device and one step per call, so a run trained on 8 GPUs loads anywhere."""
    backend = keras.backend.backend()
    accelerator = accelerator or local_accelerator(backend)
    devices = _devices(config, backend, accelerator) if training else 1
    jit_compile = _jit_compile(config, backend, accelerator.platform, devices)
    return Settings(
        backend=backend, accelerator=accelerator.name, platform=accelerator.platform,
        devices=devices, precision=precision(config.precision, accelerator),
        jit_compile=jit_compile,
        steps_per_execution=_steps_per_execution(config.steps_per_execution if training else 1,
                                                 backend, accelerator.platform),
        data_format=data_format(config, backend),
        min_image_side=min_image_side(config),
        best_every=best_every(config),
    )


def precision(mode: str, accelerator: Accelerator) -> str:
    """`config.precision` as a Keras dtype policy ("auto": what the device does best):
    float16 on NVIDIA compute capability 7.x (V100, T4: tensor cores, no bfloat16),
    bfloat16 on 8.0 and later (A100, L4, H100) and on TPUs, float32 elsewhere (CPUs have
    no fast half-precision convolutions)."""
    if mode != "auto":
        return mode
    if accelerator.platform == "tpu":
        return "mixed_bfloat16"
    capability = accelerator.compute_capability
    if accelerator.platform == "gpu" and capability is not None:
        if capability >= (8, 0):
            return "mixed_bfloat16"
        if capability >= (7, 0):
            return "mixed_float16"
    return "float32"


def data_format(config: Config, backend: str | None = None) -> str:
    """The layout inside the networks.  Images in and out stay (batch, height, width, 3) and
    the weights are the same either way: a checkpoint moves between layouts unchanged."""
    if config.data_format != "auto":
        return config.data_format
    return "channels_last"  # Keras' own default; channels_first is a choice (docs/speed.md)


def celeba_crop(image_size: int) -> int:
    """The usual CelebA face crop: 108 px for up to 64x64, 140 px above."""
    return 108 if image_size <= 64 else 140


def crop(config: Config, is_celeba: bool) -> int:
    """The centred square cut before resizing, in pixels (0 = the short side); "auto" (-1)
    keeps CelebA's face (celeba_crop), whole images elsewhere."""
    if config.crop >= 0:
        return config.crop
    return celeba_crop(config.image_size) if is_celeba else 0


def photo_crop(config: Config, photo_side: int, is_celeba: bool) -> int:
    """The centred square, in pixels of a photo with this short side, that matches how the run's
    training images were cut (projection): the run's crop where it gave pixels; for a CelebA run
    with the automatic crop, the same share of the short side as celeba_crop is of CelebA's
    178 px width; else the whole short side."""
    if config.crop > 0:
        return config.crop
    if config.crop < 0 and is_celeba:
        return round(photo_side * celeba_crop(config.image_size) / 178)
    return photo_side


def min_image_side(config: Config) -> int:
    """Images whose short side is below this are skipped ("auto" (-1): a quarter of the
    image size; 0: none are)."""
    return config.image_size // 4 if config.min_image_side < 0 else config.min_image_side


def best_every(config: Config) -> int:
    """Epochs between scores of the generator kept as the best ("auto" (-1): five scores a
    run, for runs of 5 epochs or more; 0: none kept)."""
    if config.best_every >= 0:
        return config.best_every
    return config.epochs // 5 if config.epochs >= 5 else 0


def _jit_compile(config: Config, backend: str, platform: str, devices: int) -> bool:
    jit = AUTO_JIT.get((backend, platform), False) if config.jit_compile == "auto" \
        else config.jit_compile == "true"
    if config.jit_compile == "auto" and (backend, platform) == ("tensorflow", "cpu") \
            and config.r1_gamma > 0:
        # XLA on a CPU runs R1's gradient of a gradient through convolutions about 12x slower
        # than a plain step (800 vs 65 ms on the demo preset): 168 ms a step on average with
        # XLA, 107 without (benchmarks/train_speed.py, docs/speed.md).
        jit = False
    if backend == "tensorflow" and devices > 1 and jit:
        # XLA cannot compile a step over MirroredStrategy's per-device variables (Keras'
        # own "auto" turns it off under tf.distribute too).
        if config.jit_compile == "true":
            raise ConfigError("config field jit_compile=true: XLA does not compile TensorFlow's "
                              "multi-device step; use auto or false with devices > 1")
        return False
    return jit


def _steps_per_execution(steps: int, backend: str, platform: str) -> int:
    if steps == 0:  # auto: one step per call (more measured no faster; PyTorch needs one)
        return 1
    if steps > 1 and backend == "torch":
        raise ConfigError(f"config field steps_per_execution={steps}: Keras on PyTorch runs one "
                          "step per call; use 0 (auto) or 1, or another --backend")
    return steps


def _devices(config: Config, backend: str, accelerator: Accelerator) -> int:
    """`config.devices` as a number of devices this process trains on ("auto": every local
    GPU/TPU on JAX and TensorFlow; one on a CPU and on PyTorch)."""
    if process_count() > 1:  # a cluster trains on all of its devices
        total = local_device_count(backend)
        if config.devices not in ("auto", str(total)):
            raise ConfigError(f"config field devices={config.devices}: a cluster of "
                              f"{process_count()} processes trains on all its {total} devices; "
                              "use auto")
        return total
    if config.devices == "auto":
        if accelerator.platform == "cpu":
            return 1
        if backend not in MULTI_DEVICE_BACKENDS:
            if accelerator.count > 1:
                log.info("%s: training on 1 of %d %s devices (--backend jax or tensorflow "
                         "uses all of them)",
                         backend, accelerator.count, accelerator.platform.upper())
            return 1
        return accelerator.count
    count = int(config.devices)
    if count > 1 and backend not in MULTI_DEVICE_BACKENDS:
        raise ConfigError(f"config field devices={config.devices}: more than one device needs "
                          f"--backend jax or tensorflow; Keras on {backend} trains on one")
    available = local_device_count(backend)
    if count > available:
        raise ConfigError(f"config field devices={count}: this machine has {available} "
                          f"{accelerator.platform.upper()} device(s) for Keras")
    return count
