"""Spectral normalization in the discriminator and the hinge loss: what they compute, and
that a run using them resumes exactly on every backend."""

import keras
import numpy as np
import pytest

from dcgan.training.checkpoint import state_parts
from dcgan.config import Config
from dcgan.errors import ConfigError
from dcgan.models.architectures import build_discriminator, count_macs
from dcgan.models.layers import SpectralNorm
from dcgan.training.loop import train


def _values(gan):
    return [keras.ops.convert_to_numpy(v.value) for part in state_parts(gan).values() for v in part]


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


@pytest.mark.backends
@pytest.mark.parametrize("preset", ["demo", "seed128"])
def test_spectral_norm_and_hinge_train_and_resume_exactly(preset, tmp_path):
    base = dict(image_size=32 if preset == "seed128" else 16, batch_size=8, demo_images=32,
                num_samples=4, jit_compile="false", spectral_norm=True, loss="hinge",
                best_every=0)
    if preset == "seed128":
        base.update(seed_channels=8, g_transpose_widths=(8, 8), g_conv_widths=(8,), d_widths=(8, 8, 8))
    else:
        base.update(g_widths=(16, 8))
    config = Config.from_preset(preset, **base)
    straight, history = train(config.replace(epochs=3, out_dir=str(tmp_path / "a")), progress=False)
    assert all(np.isfinite(v) for values in history.history.values() for v in values)
    train(config.replace(epochs=1, out_dir=str(tmp_path / "b")), progress=False)
    resumed, _ = train(config.replace(epochs=3, out_dir=str(tmp_path / "b")), resume=True,
                       progress=False)
    for a, b in zip(_values(straight), _values(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    u = [layer.vector_u for layer in resumed.discriminator.layers if isinstance(layer, SpectralNorm)]
    assert u and not np.allclose(keras.ops.convert_to_numpy(u[0].value), 0)
    # The exported discriminator loads with safe_mode and computes the same logits.
    x = np.random.default_rng(1).uniform(-1, 1, (2, config.image_size, config.image_size, 3))
    x = x.astype("float32")
    loaded = keras.saving.load_model(tmp_path / "b" / "checkpoints" / "discriminator.keras",
                                     safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(resumed.discriminator(x)), atol=1e-5)


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
    assert DCGAN.from_config(gan.get_config()).loss_kind == "hinge"


def test_an_unknown_loss_is_one_line():
    with pytest.raises(ConfigError, match=r"config field loss='wgan': must be one of bce, hinge") as error:
        Config.from_preset("demo", loss="wgan")
    assert "\n" not in str(error.value)
