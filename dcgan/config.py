"""One configuration object for every part of dcgan, with presets.

`Config` holds every hyperparameter; `Config.from_preset(name)` returns a named
starting point and `dataclasses.replace` (or `Config.from_preset(name, **changes)`)
tweaks it.  Every run writes its config to `config.json` in the run folder,
and `Config.from_json` reads it back, so a run can always be rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, fields
from typing import Any

from dcgan.errors import ConfigError
from dcgan.io import atomic_write_text

# The lists of choices a field can take; validation, the command line and the code read these.
# (Architectures are the registry in dcgan.models.architectures: a new one is one entry there.)
LABEL_MODES = ("noise", "one_sided")
JIT_MODES = ("auto", "true", "false")
DATA_FORMATS = ("auto", "channels_last", "channels_first")  # the layout inside the networks
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")  # Keras dtype policies
SPLITS = ("all", "train", "valid", "test")  # CelebA's official split
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
BEST_METRICS = ("swd", "fid")  # how the best generator is chosen (lower is better)
LOSSES = ("bce", "hinge")  # bce: the seed's noisy-label cross-entropy; hinge: as with spectral norm
TRANSPOSE_INITS = ("glorot_uniform", "icnr")  # the seed's upsampling kernels (dcgan.models.layers.ICNR)
FIELD_CHOICES = {"label_mode": LABEL_MODES, "jit_compile": JIT_MODES, "split": SPLITS,
                 "data_format": DATA_FORMATS, "precision": PRECISIONS, "best_metric": BEST_METRICS,
                 "loss": LOSSES, "g_transpose_init": TRANSPOSE_INITS}


def comma_list(text: str) -> tuple[str, ...]:
    """The one parser of comma-separated values (DiffAugment policies, widths, metric names):
    'color, translation,' -> ('color', 'translation')."""
    return tuple(p for p in text.replace(" ", "").split(",") if p)


@dataclass(frozen=True)
class Config:
    """Every hyperparameter of a dcgan run.

    Architecture `seed` is the model this project is named for: a Dense layer
    reshaped to 16x16x`seed_channels`, then Conv2DTranspose layers
    (`g_transpose_widths`, the last ones upsampling by 2) and Conv2D layers
    (`g_conv_widths`, then a 3-channel tanh conv); its discriminator is
    `len(d_widths)` strided conv + LeakyReLU blocks, dropout and one Dense.
    Architecture `dcgan` is Radford et al.'s DCGAN with BatchNorm, laid out
    like pytorch/examples' dcgan (`g_widths` from the 4x4 seed upwards).
    """

    preset: str = "seed128"
    architecture: str = "seed"
    image_size: int = 128
    latent_dim: int = 32

    # seed architecture
    seed_channels: int = 128
    g_transpose_widths: tuple[int, ...] = (128, 128, 128, 64)
    g_conv_widths: tuple[int, ...] = (96, 96)
    g_transpose_kernel: int = 4
    # the upsampling layers' initial kernels: Keras' glorot_uniform (the seed's) or "icnr"
    # (every output phase starts with the same taps: no checkerboard at the start)
    g_transpose_init: str = "glorot_uniform"
    g_conv_kernel: int = 3
    g_output_kernel: int = 5
    d_widths: tuple[int, ...] = (64, 128, 128, 256, 256)
    d_kernel: int = 4
    # 0: the seed's discriminator as described (conv + LeakyReLU blocks, one Dense).  Dropout 0.4
    # there, with G at 1e-4, made the seed model lag the demo network on real faces
    # (docs/real_faces.md, "The seed model")
    d_dropout: float = 0.0
    leaky_slope: float = 0.2

    # dcgan architecture (generator widths from 4x4 up; D mirrors them)
    g_widths: tuple[int, ...] = (512, 256, 128, 64)
    init_stddev: float = 0.02

    # optimisation (Adam for both networks)
    batch_size: int = 64
    d_learning_rate: float = 1e-4
    g_learning_rate: float = 2e-4  # G twice D's rate (TTUR-style, as the demo preset)
    beta_1: float = 0.5
    beta_2: float = 0.999
    # the G step reuses the D step's generated images (one G forward per step, as
    # pytorch/examples) instead of drawing fresh latents
    reuse_fakes: bool = False

    # "auto": what measured fastest on each backend (dcgan.settings.AUTO_JIT); "true"/"false"
    jit_compile: str = "auto"
    # the networks' inner layout ("auto": channels_last, dcgan.settings.data_format); images
    # in and out and the weights are the same either way (dcgan.settings.data_format)
    data_format: str = "auto"
    # "auto": float16 on NVIDIA 7.x GPUs (T4, V100), bfloat16 on 8.0+ (A100, L4, H100) and
    # TPUs, float32 on CPUs (dcgan.settings.precision); float16 gets loss scaling
    precision: str = "auto"
    # training steps per call into the compiled step (0: auto, which is 1);
    # callbacks still run once per epoch, the progress bar moves in jumps of this many
    steps_per_execution: int = 0
    # data-parallel devices: "auto" (every local GPU/TPU on JAX; one elsewhere) or a number;
    # batch_size is the global batch, split evenly (dcgan.distribute)
    devices: str = "auto"

    # exponential moving average of the generator's weights (0 = off); samples use it
    ema_decay: float = 0.999

    # DiffAugment policy before every D call: "" (off) or e.g. "color,translation,cutout"
    diffaugment: str = ""

    # the discriminator's loss: "bce" (binary cross-entropy on the noisy labels below, the
    # seed's) or "hinge" (real pushed below -1, fake above +1; the labels' noise unused)
    loss: str = "bce"
    # spectral normalization of every discriminator layer (Miyato et al. 2018)
    spectral_norm: bool = False
    # R1 penalty on real images (Mescheder et al. 2018): gamma/2 * |grad D(real)|^2, 0 = off;
    # computed every r1_interval steps and weighted by it (StyleGAN2's lazy regularisation)
    r1_gamma: float = 0.0
    r1_interval: int = 16
    # adaptive DiffAugment strength (ADA, Karras et al. 2020): 0 = every transform on every
    # image; e.g. 0.6: each image gets each transform with a probability p that rises while D
    # calls more than 60 % of the real images real, and falls otherwise; p moves at most
    # from 0 to 1 in ada_kimg thousand images (needs a diffaugment policy)
    ada_target: float = 0.0
    ada_kimg: float = 20.0

    # labels: real = 0, fake = 1
    label_mode: str = "noise"  # "noise": both sides get uniform noise; "one_sided": smooth real only
    label_noise: float = 0.05
    label_smoothing: float = 0.1

    # run
    epochs: int = 25
    steps_per_epoch: int = 0  # 0: one pass over the data
    seed: int = 0
    # a new run's generator starts from this trained one (a .keras file, a run folder, a URL
    # or a released name: dcgan.outputs.sampling); "" = from scratch.  Same layers and sizes needed.
    init_from: str = ""
    data: str = "demo"  # "demo", a folder, a .zip/.tar archive, a glob, .parquet files, hf:ORG/NAME
    crop: int = -1  # centred square before resizing: -1 auto (CelebA 108/140 px), 0 short side, N px
    split: str = "all"  # CelebA's official split (all, train, valid, test)
    cache_dir: str = ""  # decoded-image cache; "" = $DCGAN_CACHE or ~/.cache/dcgan
    min_image_side: int = -1  # skip smaller images: -1 = a quarter of image_size, 0 = keep all
    demo_images: int = 8192
    num_samples: int = 64  # images in each per-epoch sample grid
    checkpoint_every: int = 1  # epochs between full checkpoints (one is always saved at the end)
    # also a full checkpoint at the first step this many minutes after the last one, inside
    # an epoch (resumed bit-exactly); 0 = at epoch ends only.  A disconnect loses at most this.
    checkpoint_minutes: float = 10.0
    # also a sample grid (and the notebook's picture) at least this often inside an epoch,
    # named by the images seen; 0 = once per epoch
    sample_minutes: float = 0.0
    # a time budget for this session: stop at the first step past it, after a checkpoint, the
    # grids and the plots (a resume goes on); 0 = none
    minutes: float = 0.0
    keep_checkpoints: int = 3  # the newest K are kept, and the final one
    tensorboard: bool = False  # also write a TensorBoard log to RUN/tensorboard
    # Keep the best generator (checkpoints/best/): score the EMA generator every N epochs;
    # -1 = auto (five scores a run: every epochs // 5 epochs, for runs of 5 epochs or more), 0 = off
    best_every: int = -1
    best_metric: str = "swd"  # "fid": the standard FID network (its weights downloaded once)
    best_images: int = 256  # images per score (SWD on 256 128x128 images: seconds on a CPU)
    patience: int = 0  # stop after this many scores without a better one (0 = never)
    out_dir: str = "runs/seed128"

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset_names(cls) -> tuple[str, ...]:
        return tuple(PRESETS)

    @classmethod
    def from_preset(cls, name: str, **changes: Any) -> "Config":
        """Return preset `name` with `changes` applied, validated."""
        if name not in PRESETS:
            raise ConfigError(
                f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}"
            )
        base = dict(PRESETS[name])
        base.setdefault("out_dir", f"runs/{name}")
        base.update(changes)
        return cls(preset=name, **base).validated()

    def replace(self, **changes: Any) -> "Config":
        """A copy with `changes` applied, validated."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes).validated()

    # -------------------------------------------------------------- validation
    def validated(self) -> "Config":
        """Return self, or raise ConfigError naming the first bad field."""
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"config field {name}={getattr(self, name)!r}: {why}")

        if self.architecture not in ARCHITECTURE_CHECKS:
            raise bad("architecture", f"must be one of {', '.join(ARCHITECTURE_CHECKS)}")
        size = self.image_size
        if not isinstance(size, int) or size < 16 or size % 16 or not _is_pow2(size // 16):
            raise bad("image_size", "must be 16 * 2**k (16, 32, 64, 128, 256, ...)")
        for name in ("latent_dim", "batch_size", "seed_channels", "num_samples", "checkpoint_every",
                     "g_transpose_kernel", "g_conv_kernel", "g_output_kernel", "d_kernel"):
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        if self.r1_gamma < 0:
            raise bad("r1_gamma", "must be 0 (off) or a positive weight (e.g. 0.1 to 10)")
        if self.r1_interval < 1:
            raise bad("r1_interval", "must be at least 1 (steps between R1 penalties)")
        if not 0 <= self.ada_target < 1:
            raise bad("ada_target", "must be in [0, 1): 0 = off, e.g. 0.6")
        if self.ada_target > 0 and not comma_list(self.diffaugment):
            raise bad("ada_target", "adapts DiffAugment's strength: also set diffaugment "
                      "(e.g. translation)")
        if not self.ada_kimg > 0:
            raise bad("ada_kimg", "must be positive (thousands of images for p to go 0 -> 1)")
        if self.best_images < 16:
            raise bad("best_images", "must be at least 16")
        if self.best_every < -1:
            raise bad("best_every", "must be -1 (auto), 0 (off) or a number of epochs")
        if self.patience < 0:
            raise bad("patience", "must be 0 (never stop early) or a number of scores")
        if self.steps_per_execution < 0:
            raise bad("steps_per_execution", "must be 0 (auto) or a number of steps")
        if self.devices != "auto" and not (str(self.devices).isdigit() and int(self.devices) >= 1):
            raise bad("devices", "must be auto or a number of devices (1, 2, ...)")
        for name in ("checkpoint_minutes", "sample_minutes", "minutes"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
                raise bad(name, "must be 0 (off) or a number of minutes")
        if self.keep_checkpoints < 0:
            raise bad("keep_checkpoints", "must not be negative")
        if self.epochs < 0 or self.steps_per_epoch < 0 or self.demo_images < 1:
            name = "epochs" if self.epochs < 0 else (
                "steps_per_epoch" if self.steps_per_epoch < 0 else "demo_images")
            raise bad(name, "must not be negative" if name != "demo_images" else "must be at least 1")
        for name in ("g_transpose_widths", "g_conv_widths", "d_widths", "g_widths"):
            widths = getattr(self, name)
            if not widths or any(int(w) < 1 for w in widths):
                raise bad(name, "must be a non-empty list of positive widths")
        for name in ("d_learning_rate", "g_learning_rate"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be positive")
        for name in ("beta_1", "beta_2", "d_dropout", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise bad(name, "must be in [0, 1)")
        if self.crop < -1:
            raise bad("crop", "must be -1 (auto), 0 (the short side) or a size in pixels")
        if self.min_image_side < -1:
            raise bad("min_image_side", "must be -1 (a quarter of image_size), 0 (keep all) or pixels")
        for name, choices in FIELD_CHOICES.items():
            if getattr(self, name) not in choices:
                raise bad(name, f"must be one of {', '.join(choices)}")
        if any(p not in DIFFAUGMENT_POLICIES for p in comma_list(self.diffaugment)):
            raise bad("diffaugment", f"must list some of {', '.join(DIFFAUGMENT_POLICIES)} "
                      "(or be empty)")
        for name in ("label_noise", "label_smoothing"):
            if not 0 <= getattr(self, name) < 0.5:
                raise bad(name, "must be in [0, 0.5) so real and fake targets stay apart")
        problem = ARCHITECTURE_CHECKS[self.architecture](self)
        if problem:
            raise bad(*problem)
        return self

    # --------------------------------------------------------------- json i/o
    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_json(self, path: str | os.PathLike) -> None:
        """Write this config to `path` (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        known = {f.name: f for f in fields(cls)}
        values = _without_removed_fields(values)
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        coerced = {}
        for key, value in values.items():
            coerced[key] = coerce_field(key, value)
        return cls(**coerced).validated()

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Config":
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: not a readable config.json ({e})") from None
        return cls.from_dict(values)


# Fields a resumed run may change without --allow-config-change: they don't alter the model,
# the data or the optimisation, only how long it runs and what it writes.
RESUMABLE_CHANGES = ("epochs", "checkpoint_every", "checkpoint_minutes", "sample_minutes",
                     "minutes", "keep_checkpoints", "tensorboard", "cache_dir", "jit_compile", "data_format", "precision",
                     "steps_per_execution", "devices", "best_every", "best_metric", "best_images",
                     "patience", "init_from")


def field_types() -> dict[str, type]:
    """Map each Config field to the Python type of its default value."""
    return {f.name: type(f.default) for f in fields(Config)}


# Fields older configs (config.json of a run, a checkpoint's copy) may hold that are gone, with
# what to use instead: such a config still loads (and resumes); a setting that asked for
# something is named in a warning.
REMOVED_FIELDS = {
    "eval_every": (0, "scoring during training is best_every's (log.csv's swd column, best.json)"),
    "eval_images": (512, "best_images sets how many images best_every scores"),
}


def _without_removed_fields(values: dict[str, Any]) -> dict[str, Any]:
    kept = dict(values)
    for name, (default, instead) in REMOVED_FIELDS.items():
        if name in kept and kept.pop(name) != default:
            logging.getLogger("dcgan").warning("config field %s is gone since dcgan 0.9 (%s); ignored",
                                               name, instead)
    return kept


# The words a yes/no field takes (any case); anything else is refused, never read as "no".
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def coerce_field(name: str, value: Any) -> Any:
    """Convert `value` (e.g. a command-line string) to the type of field `name`."""
    types = field_types()
    if name not in types:
        raise ConfigError(f"unknown config field {name!r}")
    kind = types[name]
    if kind is bool:
        word = str(value).strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise ConfigError(f"config field {name}={value!r}: expected true or false "
                              f"({'/'.join(TRUE_WORDS)} or {'/'.join(FALSE_WORDS)})")
        return word in TRUE_WORDS
    try:
        if kind is tuple:
            if isinstance(value, str):
                value = comma_list(value)
            return tuple(int(v) for v in value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"config field {name}={value!r}: expected {kind.__name__}"
            + (" (comma-separated integers)" if kind is tuple else "")
        ) from None


# Which configs each architecture (dcgan.models.architectures.ARCHITECTURES builds them) can make: (field, why)
# for one it can't, else None.  Here, not in models.py: a Config validates without Keras.
def _check_seed(c: Config) -> tuple[str, str] | None:
    if c.g_transpose_init == "icnr" and c.g_transpose_kernel % 2:
        return "g_transpose_init", (f"icnr needs an even g_transpose_kernel (the stride, 2, "
                                    f"divides it), not {c.g_transpose_kernel}")
    upsamplings = int(math.log2(c.image_size // 16))
    if upsamplings > len(c.g_transpose_widths):
        return "image_size", (f"needs {upsamplings} upsampling layers but g_transpose_widths "
                              f"has {len(c.g_transpose_widths)}")
    return None


def _check_dcgan(c: Config) -> tuple[str, str] | None:
    side = 4 * 2 ** len(c.g_widths)
    if side != c.image_size:
        return "image_size", f"the dcgan architecture with {len(c.g_widths)} g_widths makes {side}x{side} images"
    return None


ARCHITECTURE_CHECKS = {"seed": _check_seed, "dcgan": _check_dcgan}


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# Presets list only what differs from the Config defaults (which are seed128).
PRESETS: dict[str, dict[str, Any]] = {
    # The model this project is named for: 32-d latent, 16x16x128 seed,
    # 4 Conv2DTranspose + 3 Conv2D, 128x128x3 tanh; 5-block discriminator.
    "seed128": {},
    # Radford et al. 2016, as in pytorch/examples' dcgan: 100-d latent,
    # ConvTranspose+BN+ReLU generator, strided conv+BN+LeakyReLU
    # discriminator, N(0, 0.02) init, Adam(2e-4, beta_1=0.5), no label noise.
    "dcgan64": {
        "architecture": "dcgan",
        "image_size": 64,
        "latent_dim": 100,
        "g_widths": (512, 256, 128, 64),
        "batch_size": 128,
        "d_learning_rate": 2e-4,
        "g_learning_rate": 2e-4,
        "label_noise": 0.0,
        "reuse_fakes": True,  # pytorch/examples' step: G learns from the D step's fakes
    },
    # The recipe for real face photos (benchmarks/quality.py --data lfw, docs/real_faces.md):
    # dcgan64 with DiffAugment's translation only (colour and cutout leaked into
    # the samples or slowed them) and batch 32, where plain dcgan64 collapses on few photos.
    "faces64": {
        "architecture": "dcgan",
        "image_size": 64,
        "latent_dim": 100,
        "g_widths": (512, 256, 128, 64),
        "batch_size": 32,
        "d_learning_rate": 2e-4,
        "g_learning_rate": 2e-4,
        "label_noise": 0.0,
        "reuse_fakes": True,
        "diffaugment": "translation",
    },
    # Small enough to learn the built-in faces on 2 CPU cores in minutes.
    # Radford's layout, narrow and at 32x32: learns the built-in faces on
    # 2 CPU cores in minutes (the seed stack without BatchNorm needs far longer).
    "demo": {
        "architecture": "dcgan",
        "image_size": 32,
        "latent_dim": 32,
        "g_widths": (128, 64, 32),
        # G twice D's rate (TTUR-style), both high, a short EMA and a light R1 penalty suit
        # minutes-long runs: R1 keeps the faces' layouts and colours covered as D sharpens
        # (docs/quality.md, "What got the demo to 1.5x").
        "d_learning_rate": 2e-4,
        "g_learning_rate": 4e-4,
        "ema_decay": 0.99,
        "r1_gamma": 0.1,
        "batch_size": 64,
        "epochs": 15,
        "demo_images": 8192,
        "num_samples": 64,
    },
}
