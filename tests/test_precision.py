"""Mixed precision: what `auto` picks, loss scaling per network, exact resume, float32 outputs."""

import json

import keras
import numpy as np
import pytest

from dcgan.training.checkpoint import restore_checkpoint, save_checkpoint
from dcgan.errors import ConfigError
from dcgan.hardware import Accelerator, local_accelerator
from dcgan.models.precision import loss_scale
from dcgan.outputs.folder import RunPaths
from dcgan.settings import precision, resolve
from dcgan.training.loop import build_gan, train
from dcgan.outputs.sampling import generate


# Tiny models: TensorFlow builds a graph faster than an XLA program; JAX eager is slow.
FAST_JIT = "auto" if keras.backend.backend() == "jax" else "false"


def _value(variable):
    return np.array(keras.ops.convert_to_numpy(variable.value))


def _weights(network):
    return [w.copy() for w in network.get_weights()]


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def _steps(optimizer):
    return int(_value(optimizer.iterations))


@pytest.mark.parametrize("platform, capability, name, expected", [
    ("gpu", (7, 5), "Tesla T4", "mixed_float16"),
    ("gpu", (7, 0), "Tesla V100-SXM2-16GB", "mixed_float16"),
    ("gpu", (8, 0), "NVIDIA A100-SXM4-40GB", "mixed_bfloat16"),
    ("gpu", (8, 9), "NVIDIA L4", "mixed_bfloat16"),
    ("gpu", (9, 0), "NVIDIA H100 80GB HBM3", "mixed_bfloat16"),
    ("gpu", (6, 0), "Tesla P100-PCIE-16GB", "float32"),  # no tensor cores
    ("tpu", None, "TPU v5 lite", "mixed_bfloat16"),
    ("cpu", None, "CPU (2 cores)", "float32"),
])
def test_auto_precision_follows_the_device(platform, capability, name, expected):
    assert precision("auto", Accelerator(platform, name, capability)) == expected
    assert precision("float32", Accelerator(platform, name, capability)) == "float32"


def test_peak_table_knows_the_colab_devices_and_says_unknown_otherwise():
    assert Accelerator("gpu", "Tesla T4", (7, 5)).peak_tflops("float16") == 65.0
    assert Accelerator("gpu", "Tesla T4", (7, 5)).peak_tflops("bfloat16") is None  # no bf16
    assert Accelerator("gpu", "NVIDIA H100 PCIe", (9, 0)).peak_tflops("bfloat16") == 756.0
    assert Accelerator("gpu", "NVIDIA H100 80GB HBM3", (9, 0)).peak_tflops("bfloat16") == 989.4
    assert Accelerator("tpu", "TPU v5 lite").peak_tflops("bfloat16") == 197.0
    assert Accelerator("cpu", "CPU (2 cores)").peak_tflops("float32") is None


def test_on_this_cpu_auto_is_float32_and_one_step_per_call(tiny_demo):
    assert local_accelerator().platform == "cpu"
    settings = resolve(tiny_demo)
    assert settings.precision == "float32" and settings.steps_per_execution == 1
    gan = build_gan(tiny_demo)
    assert {layer.dtype_policy.name for layer in gan.generator.layers} == {"float32"}
    assert loss_scale(gan.d_optimizer) is None


@pytest.mark.backends
@pytest.mark.parametrize("reuse_fakes", [False, True])
def test_float16_skips_a_nonfinite_step_for_that_network_only(tiny_seed, reuse_fakes):
    """A NaN pixel in the real batch makes only D's gradients non-finite: D's step is
    skipped and D's scale halved; G still learns and keeps its scale."""
    config = tiny_seed.replace(precision="mixed_float16", reuse_fakes=reuse_fakes, jit_compile=FAST_JIT)
    keras.utils.set_random_seed(0)
    gan = build_gan(config)
    assert gan.generator.get_layer("up0").compute_dtype == "float16"
    assert gan.generator.get_layer("up0").variable_dtype == "float32"
    real = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    gan.fit(real, batch_size=8, epochs=1, verbose=0, shuffle=False)
    d_scale, g_scale = loss_scale(gan.d_optimizer), loss_scale(gan.g_optimizer)
    assert d_scale == g_scale == 2.0 ** 15 and _steps(gan.d_optimizer) == 1
    d_before, g_before = _weights(gan.discriminator), _weights(gan.generator)

    poisoned = real.copy()
    poisoned[0, 0, 0, 0] = np.nan
    gan.fit(poisoned, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert loss_scale(gan.d_optimizer) == d_scale / 2 and _steps(gan.d_optimizer) == 1
    assert not _changed(d_before, _weights(gan.discriminator))
    assert all(np.isfinite(w).all() for w in gan.discriminator.get_weights())
    assert loss_scale(gan.g_optimizer) == g_scale and _steps(gan.g_optimizer) == 2
    assert _changed(g_before, _weights(gan.generator))

    gan.fit(real, batch_size=8, epochs=1, verbose=0, shuffle=False)  # D learns again
    assert _steps(gan.d_optimizer) == 2 and _changed(d_before, _weights(gan.discriminator))
    assert loss_scale(gan.d_optimizer) == d_scale / 2


@pytest.mark.backends
def test_float16_resume_restores_the_loss_scales_and_continues_exactly(tiny_seed, tmp_path):
    config = tiny_seed.replace(precision="mixed_float16", jit_compile=FAST_JIT)
    rng = np.random.default_rng(0)
    batches = rng.uniform(-1, 1, (5, 8, 32, 32, 3)).astype("float32")
    batches[1, 0, 0, 0, 0] = np.nan  # lowers D's scale: something to restore
    keras.utils.set_random_seed(0)
    first = build_gan(config)
    for batch in batches[:2]:
        first.fit(batch, batch_size=8, epochs=1, verbose=0, shuffle=False)
    checkpoint = save_checkpoint(tmp_path, first, 1, config, np.zeros((4, 32), np.float32))
    resumed = build_gan(config.replace(seed=5))  # other weights and seed until restored
    restore_checkpoint(checkpoint, resumed)
    assert loss_scale(resumed.d_optimizer) == 2.0 ** 14 and loss_scale(resumed.g_optimizer) == 2.0 ** 15
    for gan in (first, resumed):
        for batch in batches[2:]:
            gan.fit(batch, batch_size=8, epochs=1, verbose=0, shuffle=False)

    def state(gan):
        return (gan.generator.get_weights() + gan.discriminator.get_weights()
                + gan.ema_generator.get_weights()
                + [_value(v) for v in gan.d_optimizer.variables + gan.g_optimizer.variables]
                + [_value(gan.seed_generator.state)])

    for a, b in zip(state(first), state(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.backends
def test_mixed_run_writes_float32_samples_and_exports_and_may_change_precision(tiny_demo):
    config = tiny_demo.replace(demo_images=32, precision="mixed_float16", jit_compile=FAST_JIT)
    gan, _ = train(config, progress=False)
    paths = RunPaths(config.out_dir)
    assert json.loads(paths.environment.read_text())["resolved"]["precision"] == "mixed_float16"
    assert generate(gan, 4).dtype == np.float32
    assert paths.epoch_grid(1).exists()
    exported = keras.saving.load_model(paths.export("generator_ema"), compile=False, safe_mode=True)
    assert {layer.dtype_policy.name for layer in exported.layers} == {"float32"}
    np.testing.assert_allclose(exported.predict(np.zeros((2, config.latent_dim)), verbose=0),
                               gan.ema_generator.predict(np.zeros((2, config.latent_dim)), verbose=0),
                               atol=2e-2)  # the same weights; float16 arithmetic in the original

    # A run resumed elsewhere may resolve another precision: loss scales are dropped or start anew.
    resumed, history = train(config.replace(epochs=2, precision="float32"), resume=True, progress=False)
    assert history.epoch == [1] and loss_scale(resumed.g_optimizer) is None
    again, history = train(config.replace(epochs=3), resume=True, progress=False)
    assert history.epoch == [2] and loss_scale(again.g_optimizer) == 2.0 ** 15


def test_a_float32_copy_converts_the_layers_inside_spectral_norm(tiny_seed):
    from dcgan.models.architectures import build_discriminator
    from dcgan.models.precision import dtype_policy, float32_copy

    config = tiny_seed.replace(spectral_norm=True)
    with dtype_policy("mixed_float16"):
        mixed = build_discriminator(config)
    wrapped = [layer.layer for layer in mixed.layers if hasattr(layer, "layer")]
    assert "mixed_float16" in {layer.dtype_policy.name for layer in wrapped}  # the logit is float32 anyway
    copy = float32_copy(mixed)
    inner = [layer.layer for layer in copy.layers if hasattr(layer, "layer")]
    assert len(inner) == len(wrapped)
    assert {layer.dtype_policy.name for layer in [*copy.layers, *inner]} == {"float32"}
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(copy.predict(images, verbose=0), mixed.predict(images, verbose=0), rtol=1e-2)


@pytest.mark.backends
def test_several_steps_per_execution_train_alike_where_the_backend_allows(tiny_demo, tmp_path):
    one = tiny_demo.replace(demo_images=64, epochs=2, jit_compile=FAST_JIT, out_dir=str(tmp_path / "one"))
    if keras.backend.backend() == "torch":
        with pytest.raises(ConfigError, match="steps_per_execution=2"):
            train(one.replace(steps_per_execution=2), progress=False)
        assert not (tmp_path / "one").exists()  # refused before anything was written
        return
    a, _ = train(one, progress=False)
    b, history = train(one.replace(steps_per_execution=2, out_dir=str(tmp_path / "two")),
                       progress=False)
    assert history.epoch == [0, 1] and _steps(b.d_optimizer) == 2 * 4  # 64 images / 16 a batch
    rows = (tmp_path / "two" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2"]  # callbacks once per epoch
    for x, y in zip(a.generator.get_weights(), b.generator.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
