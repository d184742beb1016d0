"""Generator and discriminator networks, built from a Config.

Both are functional `keras.Model`s of built-in layers and the two in `dcgan.models.layers`, so their `.keras`
files load with `safe_mode=True`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers

from dcgan import settings
from dcgan.config import Config
from dcgan.models.layers import ICNR, SpectralNorm


@dataclass(frozen=True)
class Architecture:
    """One registry entry: how to build both networks (which configs each can build is
    config.ARCHITECTURE_CHECKS, so a Config validates without Keras)."""

    generator: Callable[[Config, "Inside"], keras.Model]
    discriminator: Callable[[Config, "Inside"], keras.Model]


@dataclass(frozen=True)
class Inside:
    """How the networks compute inside, as the run's settings say (dcgan.settings): the
    layout of their activations, and whether BatchNorm averages over tf.distribute replicas.
    Images in and out stay (batch, height, width, 3), and the weights are the same, either way:
    a checkpoint moves between layouts, backends and device counts unchanged."""

    data_format: str = "channels_last"
    synchronized_batch_norm: bool = False


def build_generator(config: Config, data_format: str | None = None,
                    synchronized_batch_norm: bool = False) -> keras.Model:
    """Map a latent vector of size `config.latent_dim` to an image in [-1, 1].
    `data_format`: the inner layout (default: `config.data_format` as dcgan.settings resolves it)."""
    inside = Inside(data_format or settings.data_format(config), synchronized_batch_norm)
    return ARCHITECTURES[config.architecture].generator(config, inside)


def build_discriminator(config: Config, data_format: str | None = None,
                        synchronized_batch_norm: bool = False) -> keras.Model:
    """Map an image to one logit; this project's convention is high = fake."""
    inside = Inside(data_format or settings.data_format(config), synchronized_batch_norm)
    return ARCHITECTURES[config.architecture].discriminator(config, inside)


# ---------------------------------------------------------------- seed models
def _to_inner(x, fmt):
    """NHWC activations -> the networks' inner layout."""
    return layers.Permute((3, 1, 2))(x) if fmt == "channels_first" else x


def _to_outer(x, fmt):
    """The inner layout -> NHWC (images out; before Flatten, so Dense weights do not depend on it)."""
    return layers.Permute((2, 3, 1))(x) if fmt == "channels_first" else x


def _build_seed_generator(c: Config, inside: Inside) -> keras.Model:
    """Dense -> 16x16 seed -> Conv2DTranspose stack (last ones upsample) -> Conv2D stack -> tanh."""
    upsamplings = int(math.log2(c.image_size // 16))
    z = keras.Input((c.latent_dim,), name="latent")
    x = layers.Dense(16 * 16 * c.seed_channels, name="project")(z)
    x = layers.LeakyReLU(c.leaky_slope)(x)
    x = layers.Reshape((16, 16, c.seed_channels), name="seed")(x)
    n = len(c.g_transpose_widths)
    for i, width in enumerate(c.g_transpose_widths):
        stride = 2 if i >= n - upsamplings else 1
        init = ICNR(stride) if stride > 1 and c.g_transpose_init == "icnr" else "glorot_uniform"
        x = layers.Conv2DTranspose(width, c.g_transpose_kernel, strides=stride, padding="same",
                                   kernel_initializer=init, name=f"up{i}")(x)
        x = layers.LeakyReLU(c.leaky_slope)(x)
    for i, width in enumerate(c.g_conv_widths):
        x = layers.Conv2D(width, c.g_conv_kernel, padding="same", name=f"conv{i}")(x)
        x = layers.LeakyReLU(c.leaky_slope)(x)
    # float32 output keeps tanh exact under a mixed-precision policy.
    image = layers.Conv2D(3, c.g_output_kernel, padding="same", activation="tanh",
                          dtype="float32", name="to_rgb")(x)
    return keras.Model(z, image, name="generator")


def _build_seed_discriminator(c: Config, inside: Inside) -> keras.Model:
    """Strided conv + LeakyReLU blocks -> dropout -> one Dense logit."""
    image = keras.Input((c.image_size, c.image_size, 3), name="image")
    fmt = inside.data_format
    x = _to_inner(image, fmt)
    for i, width in enumerate(c.d_widths):
        x = _d_layer(c, layers.Conv2D(width, c.d_kernel, strides=2, padding="same",
                                      data_format=fmt, name=f"block{i}"))(x)
        x = layers.LeakyReLU(c.leaky_slope)(x)
    x = layers.Flatten()(_to_outer(x, fmt))
    # Seeded: its random stream is then a variable the checkpoint keeps on every backend
    # (unseeded, Keras on PyTorch draws from torch's global generator, which a resume resets).
    x = layers.Dropout(c.d_dropout, seed=c.seed)(x)
    logit = _d_layer(c, layers.Dense(1, dtype="float32", name="logit"))(x)
    return keras.Model(image, logit, name="discriminator")


def _d_layer(c: Config, layer: layers.Layer) -> layers.Layer:
    """A discriminator layer, spectrally normalized when `c.spectral_norm`."""
    if not c.spectral_norm:
        return layer
    return SpectralNorm(layer, name=f"sn_{layer.name}", dtype=layer.dtype_policy)


def _dcgan_init(c: Config) -> dict:
    return {
        "conv": keras.initializers.RandomNormal(0.0, c.init_stddev),
        "gamma": keras.initializers.RandomNormal(1.0, c.init_stddev),
    }


def _batch_norm(init: dict, name: str, inside: Inside) -> layers.Layer:
    # PyTorch's BatchNorm2d defaults: momentum 0.1 (Keras 0.9), eps 1e-5.
    # Statistics over the global batch, as on one device: JAX's DataParallel does that by
    # itself; tf.distribute replicas must be told to (synchronized is TF-only in Keras).
    return layers.BatchNormalization(axis=1 if inside.data_format == "channels_first" else -1,
                                     momentum=0.9, epsilon=1e-5,
                                     gamma_initializer=init["gamma"], name=name,
                                     synchronized=inside.synchronized_batch_norm)


def _build_dcgan_generator(c: Config, inside: Inside) -> keras.Model:
    """As pytorch/examples' dcgan netG: 1x1 -> 4x4 -> ... -> image, BatchNorm + ReLU, tanh."""
    init = _dcgan_init(c)
    z = keras.Input((c.latent_dim,), name="latent")
    fmt = inside.data_format
    x = _to_inner(layers.Reshape((1, 1, c.latent_dim))(z), fmt)
    for i, width in enumerate(c.g_widths):
        stride, padding = (1, "valid") if i == 0 else (2, "same")
        x = layers.Conv2DTranspose(width, 4, strides=stride, padding=padding, use_bias=False,
                                   data_format=fmt, kernel_initializer=init["conv"],
                                   name=f"up{i}")(x)
        x = _batch_norm(init, f"bn{i}", inside)(x)
        x = layers.ReLU()(x)
    image = layers.Conv2DTranspose(3, 4, strides=2, padding="same", use_bias=False, data_format=fmt,
                                   kernel_initializer=init["conv"], name="to_rgb")(x)
    image = layers.Activation("tanh", dtype="float32")(image)
    return keras.Model(z, _to_outer(image, fmt), name="generator")


def _build_dcgan_discriminator(c: Config, inside: Inside) -> keras.Model:
    """As pytorch/examples' dcgan netD, with the final sigmoid folded into the loss."""
    init = _dcgan_init(c)
    image = keras.Input((c.image_size, c.image_size, 3), name="image")
    fmt = inside.data_format
    x = _to_inner(image, fmt)
    for i, width in enumerate(reversed(c.g_widths)):
        x = _d_layer(c, layers.Conv2D(width, 4, strides=2, padding="same", use_bias=False,
                                      data_format=fmt, kernel_initializer=init["conv"],
                                      name=f"block{i}"))(x)
        if i > 0:  # Radford: no BatchNorm on the discriminator's input layer
            x = _batch_norm(init, f"bn{i}", inside)(x)
        x = layers.LeakyReLU(0.2)(x)
    x = _d_layer(c, layers.Conv2D(1, 4, padding="valid", use_bias=False,
                                  kernel_initializer=init["conv"], data_format=fmt,
                                  dtype="float32", name="logit_conv"))(x)
    logit = layers.Flatten(name="logit")(x)
    return keras.Model(image, logit, name="discriminator")


ARCHITECTURES: dict[str, Architecture] = {
    "seed": Architecture(_build_seed_generator, _build_seed_discriminator),
    "dcgan": Architecture(_build_dcgan_generator, _build_dcgan_discriminator),
}


# ------------------------------------------------------------------ analysis
def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one sample through the Dense/conv layers of `model`."""
    total = 0
    for node in model.layers:
        # A spectrally normalized layer: the wrapper has the shapes, the layer the kernel.
        layer = node.layer if isinstance(node, SpectralNorm) else node
        if isinstance(layer, layers.Dense):
            total += int(layer.kernel.shape[0] * layer.kernel.shape[1])
        elif isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            kh, kw, *_ = layer.kernel.shape
            first = layer.data_format == "channels_first"
            inp, out = (list(t.shape) for t in (node.input, node.output))
            if first:  # as channels-last: (batch, h, w, c)
                inp, out = ([s[0], *s[2:], s[1]] for s in (inp, out))
            cin, cout = inp[-1], out[-1]
            # A transposed conv spends its MACs per input position, a conv per output position.
            shape = inp if isinstance(layer, layers.Conv2DTranspose) else out
            total += int(shape[1] * shape[2] * kh * kw * cin * cout)
    return total


def train_step_flops(generator: keras.Model, discriminator: keras.Model,
                     reuse_fakes: bool = False) -> int:
    """Floating-point operations per image of one training step (a D step and a G step).

    2 FLOPs per MAC; a backward pass costs twice its forward.  D step: G forward (1x G),
    D forward and backward on the real and the fake image (2 x 3x D).  G step: G forward
    and backward (3x G; with `reuse_fakes` the D step's forward is reused: 2x G), D
    forward and backward to its input (3x D).  Total 4G + 9D MACs (3G + 9D reusing fakes).
    """
    g, d = count_macs(generator), count_macs(discriminator)
    return 2 * ((3 if reuse_fakes else 4) * g + 9 * d)
