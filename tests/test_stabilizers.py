"""Spectral normalization in the discriminator and the hinge loss: what they compute, and
that a run using them resumes exactly on every backend."""

import keras
import numpy as np
import pytest

from dcgan.config import Config
from dcgan.errors import ConfigError
from dcgan.models.architectures import build_discriminator, count_macs
from dcgan.models.layers import SpectralNorm


def test_spectral_norm_divides_by_the_largest_singular_value():
    conv = keras.layers.Conv2D(6, 3, padding="same", use_bias=True, bias_initializer="ones")
    layer = SpectralNorm(conv)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    layer(x)
    for _ in range(60):  # the power iteration converges over training calls
        layer(x, training=True)
    kernel = keras.ops.convert_to_numpy(conv.kernel.value)
    sigma = np.linalg.svd(kernel.reshape(-1, 6), compute_uv=False)[0]
    bias = keras.ops.convert_to_numpy(conv.bias.value)
    expected = (keras.ops.convert_to_numpy(conv(x)) - bias) / sigma + bias
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-3, atol=1e-4)
    # The kernel itself is never overwritten; only the power-iteration vector moves.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(conv.kernel.value), kernel)
    assert [w.name for w in layer.non_trainable_weights] == ["vector_u"]


@pytest.mark.parametrize("architecture", ["demo", "seed128"])
def test_spectral_norm_wraps_every_discriminator_layer_and_keeps_the_macs(architecture):
    changes = dict(image_size=32, seed_channels=8, g_transpose_widths=(8, 8), g_conv_widths=(8,),
                   d_widths=(8, 8, 8)) if architecture == "seed128" else dict(image_size=32)
    plain = build_discriminator(Config.from_preset(architecture, **changes))
    normed = build_discriminator(Config.from_preset(architecture, spectral_norm=True, **changes))
    wrapped = [layer.layer.name for layer in normed.layers if isinstance(layer, SpectralNorm)]
    weighted = [layer.name for layer in plain.layers if hasattr(layer, "kernel")]
    assert wrapped == weighted and wrapped
    assert count_macs(normed) == count_macs(plain)


def test_hinge_losses_are_the_hinge():
    from dcgan.training.gan import DCGAN
    from dcgan.models.architectures import build_generator

    config = Config.from_preset("demo", image_size=16, g_widths=(16, 8), loss="hinge")
    gan = DCGAN(build_generator(config), build_discriminator(config), loss="hinge")
    gan.compile(d_optimizer=keras.optimizers.Adam(), g_optimizer=keras.optimizers.Adam())
    real_logits = np.array([[-2.0], [-0.5], [0.3]], "float32")  # real: pushed below -1
    fake_logits = np.array([[2.0], [0.5], [-0.3]], "float32")  # fake: pushed above +1
    d_real = float(gan.d_loss_object(np.zeros((3, 1)), real_logits))
    d_fake = float(gan.d_loss_object(np.ones((3, 1)), fake_logits))
    assert d_real == pytest.approx((0 + 0.5 + 1.3) / 3) and d_fake == pytest.approx(d_real)
    # The generator wants its images called real: lower logits, a lower loss.
    assert float(gan.g_loss_object(np.zeros((3, 1)), fake_logits)) == pytest.approx(2.2 / 3)


def test_an_unknown_loss_is_one_line():
    with pytest.raises(ConfigError, match=r"config field loss='wgan': must be one of bce, hinge") as error:
        Config.from_preset("demo", loss="wgan")
    assert "\n" not in str(error.value)
