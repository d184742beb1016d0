"""The R1 gradient penalty and adaptive augmentation strength (ADA): what they compute,
that p follows the discriminator, and that runs using them resume exactly on every backend."""

import contextlib

import keras
import numpy as np
import pytest
from keras import ops

from dcgan import backend
from dcgan.config import Config
from dcgan.data.pipeline import make_dataset
from dcgan.errors import ConfigError
from dcgan.training.loop import build_gan

WEIGHT = 0.7  # the penalty's weight in the finite-difference test


def _tiny_discriminator():
    # Smooth (tanh), so that the penalty has a derivative everywhere; float64 for the differences.
    return keras.Sequential([
        keras.Input((6, 6, 3), dtype="float64"),
        keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh", dtype="float64"),
        keras.layers.Flatten(dtype="float64"),
        keras.layers.Dense(1, dtype="float64"),
    ])


def _f64(array):
    return ops.convert_to_tensor(array, dtype="float64")


@pytest.fixture
def float64():
    """JAX computes in float32 unless told otherwise (jax_enable_x64), for this test only."""
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", False)


def _penalty(grad):
    return WEIGHT * ops.mean(ops.sum(ops.square(grad), axis=(1, 2, 3)))


def _scope(model):
    variables = model.trainable_variables
    if keras.backend.backend() != "jax":
        return contextlib.nullcontext()
    return backend.step_scope(variables, [v.value for v in variables])


def _penalty_value(model, x):
    """WEIGHT * mean |dD/dx|^2, by first-order autodiff (which fit() has long relied on)."""
    with _scope(model):
        _, grad = backend.input_grad(lambda images: (ops.sum(model(images)), ()), _f64(x))
    return WEIGHT * np.mean(np.sum(ops.convert_to_numpy(grad).reshape(len(x), -1) ** 2, axis=1))


def _penalty_gradients(model, x, active):
    variables = model.trainable_variables
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build(variables)
    with _scope(model):
        grads = backend.penalty_gradients(
            lambda images: ops.sum(model(images)), _f64(x), _penalty,
            variables, optimizer, ops.convert_to_tensor(active))
    return [ops.convert_to_numpy(g) for g in grads]


@pytest.mark.backends
def test_r1_gradients_match_finite_differences(float64):
    keras.utils.set_random_seed(3)
    model = _tiny_discriminator()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 6, 3))
    grads = _penalty_gradients(model, x, True)
    weights = [ops.convert_to_numpy(v.value) for v in model.trainable_variables]
    assert any(np.abs(g).max() > 1e-4 for g in grads)
    for _ in range(3):  # the derivative along random directions in weight space
        direction = [rng.normal(size=w.shape) for w in weights]
        def slope(h):
            values = []
            for sign in (1, -1):
                model.set_weights([w + sign * h * d for w, d in zip(weights, direction)])
                values.append(_penalty_value(model, x))
            return (values[0] - values[1]) / (2 * h)

        numeric = (4 * slope(5e-3) - slope(1e-2)) / 3  # Richardson: error O(h^4)
        model.set_weights(weights)
        analytic = sum(np.sum(g * d) for g, d in zip(grads, direction))
        assert analytic == pytest.approx(numeric, rel=2e-3)
    # Lazy: between the R1 steps nothing is computed and the gradients are zero.
    assert all(not np.any(g) for g in _penalty_gradients(model, x, False))


def _tiny(**changes):
    base = dict(image_size=16, g_widths=(16, 8), batch_size=8, demo_images=32, num_samples=4,
                best_every=0, diffaugment="color,translation,cutout",
                # JAX runs op by op without its compiler: minutes instead of seconds here
                jit_compile="true" if keras.backend.backend() == "jax" else "false")
    return Config.from_preset("demo", **{**base, **changes})


def _p_after_training(config, start_p, steps=24):
    keras.utils.set_random_seed(config.seed)
    dataset, _ = make_dataset(config)
    gan = build_gan(config)
    gan.ada_p.assign(start_p)
    history = gan.fit(dataset, epochs=steps // 4, steps_per_epoch=4, verbose=0)
    return history.history["ada_p"]


def test_adaptive_p_rises_when_d_overfits_and_falls_when_it_cannot():
    # 16 real images, a fast discriminator and a generator that barely moves: D soon calls
    # every real image real, so p climbs (by 8 / 50 per step at most).
    overfit = _tiny(demo_images=16, d_learning_rate=2e-3, g_learning_rate=1e-7, ada_target=0.6,
                    ada_kimg=0.05)
    rising = _p_after_training(overfit, 0.0)
    assert rising[-1] > 0.5 and rising[-1] > rising[0]
    # A discriminator that cannot learn (learning rate ~0) says real at random: p falls.
    blind = overfit.replace(d_learning_rate=1e-9)
    falling = _p_after_training(blind, 0.8)
    assert falling[-1] < 0.4 and falling[-1] < falling[0]


@pytest.mark.parametrize("changes,words", [
    (dict(r1_gamma=-1.0), "r1_gamma=-1.0: must be 0 (off) or a positive weight"),
    (dict(r1_interval=0), "r1_interval=0: must be at least 1"),
    (dict(ada_target=1.5, diffaugment="color"), "ada_target=1.5: must be in [0, 1)"),
    (dict(ada_target=0.6), "ada_target=0.6: adapts DiffAugment's strength: also set diffaugment"),
    (dict(ada_target=0.6, diffaugment="color", ada_kimg=0.0), "ada_kimg=0.0: must be positive"),
])
def test_bad_stabilizer_values_are_one_line(changes, words):
    with pytest.raises(ConfigError) as error:
        Config.from_preset("demo", **changes)
    assert words in str(error.value) and "\n" not in str(error.value)
