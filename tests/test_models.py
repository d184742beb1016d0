import keras
import numpy as np
import pytest
from keras import layers

from dcgan.config import PRESETS, Config
from dcgan.models.architectures import build_discriminator, build_generator, count_macs


def _count(model, kind):
    return sum(type(layer) is kind for layer in model.layers)


@pytest.mark.parametrize("name", list(PRESETS))
def test_shapes_and_ranges_for_every_preset(name):
    config = Config.from_preset(name)
    g, d = build_generator(config), build_discriminator(config)
    z = np.random.default_rng(0).standard_normal((2, config.latent_dim)).astype("float32")
    images = keras.ops.convert_to_numpy(g(z, training=False))
    size = config.image_size
    assert images.shape == (2, size, size, 3)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    logits = keras.ops.convert_to_numpy(d(images, training=False))
    assert logits.shape == (2, 1) and np.isfinite(logits).all()


def test_seed128_layer_stack_is_the_specified_one():
    config = Config.from_preset("seed128")
    g = build_generator(config)
    assert g.input_shape == (None, 32)
    assert g.get_layer("seed").output.shape == (None, 16, 16, 128)
    assert _count(g, layers.Dense) == 1
    assert _count(g, layers.Conv2DTranspose) == 4
    assert _count(g, layers.Conv2D) == 3
    # LeakyReLU between every pair of weighted layers, tanh only at the end.
    assert _count(g, layers.LeakyReLU) == 1 + 4 + 2
    assert g.layers[-1].activation is keras.activations.tanh
    strides = [layer.strides for layer in g.layers if isinstance(layer, layers.Conv2DTranspose)]
    assert strides == [(1, 1), (2, 2), (2, 2), (2, 2)]  # 16 -> 32 -> 64 -> 128
    assert g.output_shape == (None, 128, 128, 3)
    # Compute sized as asked: about 3-4 GMAC per generated image.
    assert 3e9 <= count_macs(g) <= 4e9

    d = build_discriminator(config)
    assert _count(d, layers.Conv2D) == 5 and _count(d, layers.LeakyReLU) == 5
    assert _count(d, layers.Dropout) == 1 and _count(d, layers.Dense) == 1
    assert d.output_shape == (None, 1)


def test_dcgan64_matches_pytorch_examples_shapes():
    config = Config.from_preset("dcgan64", data_format="channels_last")  # shapes as written below
    g, d = build_generator(config), build_discriminator(config)
    assert g.input_shape == (None, 100) and g.output_shape == (None, 64, 64, 3)
    assert [layer.output.shape[1:] for layer in g.layers if isinstance(layer, layers.Conv2DTranspose)] == [
        (4, 4, 512), (8, 8, 256), (16, 16, 128), (32, 32, 64), (64, 64, 3)]
    assert _count(g, layers.BatchNormalization) == 4 and _count(d, layers.BatchNormalization) == 3
    assert [layer.output.shape[1:] for layer in d.layers if isinstance(layer, layers.Conv2D)] == [
        (32, 32, 64), (16, 16, 128), (8, 8, 256), (4, 4, 512), (1, 1, 1)]
    # PyTorch parameter counts of netG / netD (bias-free convs, BatchNorm gamma+beta).
    assert g.count_params() - 2 * sum(bn.moving_mean.shape[0] for bn in g.layers
                                      if isinstance(bn, layers.BatchNormalization)) == 3576704
    assert d.count_params() - 2 * sum(bn.moving_mean.shape[0] for bn in d.layers
                                      if isinstance(bn, layers.BatchNormalization)) == 2765568
    weights = g.get_layer("up1").kernel.numpy()
    assert abs(weights.std() - 0.02) < 0.002  # N(0, 0.02) init


@pytest.mark.parametrize("fixture", ["tiny_demo", "tiny_seed"])
def test_keras_file_round_trip_is_exact(fixture, request, tmp_path):
    config = request.getfixturevalue(fixture)
    z = np.random.default_rng(1).standard_normal((3, config.latent_dim)).astype("float32")
    for model, x in ((build_generator(config), z), (build_discriminator(config), None)):
        if x is None:
            x = np.random.default_rng(2).uniform(-1, 1, (3, config.image_size, config.image_size, 3))
            x = x.astype("float32")
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x, training=False)),
                                      keras.ops.convert_to_numpy(loaded(x, training=False)))


@pytest.mark.backends
@pytest.mark.parametrize("preset", ["dcgan64", "seed128"])
def test_channels_first_inside_is_the_same_network(preset):
    """The inner layout changes neither the weights nor what the networks compute."""
    if keras.backend.backend() == "tensorflow":
        pytest.skip("TensorFlow's CPU convolutions are channels-last only")
    small = {"dcgan64": dict(image_size=32, g_widths=(16, 8, 4)),
             "seed128": dict(image_size=32, seed_channels=8, g_transpose_widths=(8, 8, 8, 8),
                             g_conv_widths=(8, 8), d_widths=(8, 8, 8, 8, 8), d_dropout=0.0)}[preset]
    last = Config.from_preset(preset, data_format="channels_last", **small)
    first = last.replace(data_format="channels_first")
    z = np.random.default_rng(0).standard_normal((3, last.latent_dim)).astype("float32")
    for build in (build_generator, build_discriminator):
        a, b = build(last), build(first)
        assert [w.shape for w in a.weights] == [w.shape for w in b.weights]
        b.set_weights(a.get_weights())
        x = z if build is build_generator else np.tanh(
            np.random.default_rng(1).standard_normal((3, 32, 32, 3))).astype("float32")
        for training in (False, True):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(a(x, training=training)),
                                       keras.ops.convert_to_numpy(b(x, training=training)),
                                       rtol=1e-4, atol=1e-5)
        assert count_macs(a) == count_macs(b)


def test_train_step_flops_count_every_pass_of_both_networks():
    from dcgan.models.architectures import train_step_flops

    g = keras.Sequential([keras.Input((2,)), layers.Dense(3)])  # 6 MACs
    d = keras.Sequential([keras.Input((3,)), layers.Dense(1)])  # 3 MACs
    assert train_step_flops(g, d) == 2 * (4 * 6 + 9 * 3)
    assert train_step_flops(g, d, reuse_fakes=True) == 2 * (3 * 6 + 9 * 3)
    seed128 = Config.from_preset("seed128")
    flops = train_step_flops(build_generator(seed128), build_discriminator(seed128))
    assert 28e9 <= flops <= 34e9  # G 3.3 GMAC, D 0.26 GMAC per image


def test_icnr_upsampling_starts_as_nearest_neighbour():
    from dcgan.models.layers import ICNR

    layer = layers.Conv2DTranspose(3, 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=ICNR(2, seed=1))
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 5)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    # Each output pixel equals its neighbour in the same 2x2 block (blocks start at 1 here).
    np.testing.assert_allclose(y[:, 1:-1:2], y[:, 2::2], atol=1e-6)
    np.testing.assert_allclose(y[:, :, 1:-1:2], y[:, :, 2::2], atol=1e-6)
    assert np.abs(y[:, 0::2] - y[:, 1::2]).max() > 0.1  # not the trivial all-equal output


def test_icnr_takes_the_checkerboard_out_of_the_untrained_seed_generator(tmp_path):
    from dcgan.outputs.images import to_uint8
    from dcgan.evaluation.metrics import checkerboard_energy

    z = np.random.default_rng(0).standard_normal((16, 32)).astype("float32")
    energy = {}
    for init in ("glorot_uniform", "icnr"):
        keras.utils.set_random_seed(0)
        config = Config.from_preset("seed128", image_size=32, g_transpose_init=init)
        g = build_generator(config)
        energy[init] = checkerboard_energy(to_uint8(keras.ops.convert_to_numpy(g(z))))
    assert energy["icnr"] < energy["glorot_uniform"] / 4  # measured 2.4 % vs 28 %
    g.save(tmp_path / "g.keras")  # the initializer is part of the saved config
    loaded = keras.saving.load_model(tmp_path / "g.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(z)),
                               keras.ops.convert_to_numpy(g(z)), atol=1e-5)


def test_checkerboard_energy_sees_a_checkerboard_and_not_a_gradient():
    from dcgan.evaluation.metrics import checkerboard_energy

    rows, cols = np.indices((32, 32))
    board = np.where((rows + cols) % 2, 200, 50)[None, :, :, None].repeat(3, axis=3)
    ramp = (rows * 8)[None, :, :, None].repeat(3, axis=3)
    assert checkerboard_energy(board) > 0.99 and checkerboard_energy(ramp) < 0.01


def test_icnr_with_an_odd_kernel_is_one_line():
    from dcgan.errors import ConfigError

    with pytest.raises(ConfigError, match="g_transpose_init='icnr': icnr needs an even") as error:
        Config.from_preset("seed128", g_transpose_init="icnr", g_transpose_kernel=3)
    assert "\n" not in str(error.value)
