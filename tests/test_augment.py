import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan.models.augment import diff_augment, parse_policy


def _images(n=8, size=16):
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")


def test_translation_moves_whole_images_and_fills_with_zeros():
    x = _images()
    out = keras.ops.convert_to_numpy(diff_augment(x, ("translation",), keras.random.SeedGenerator(1)))
    moved = 0
    for original, shifted in zip(x, out):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.allclose(shifted[max(dy, 0):16 + min(dy, 0), max(dx, 0):16 + min(dx, 0)],
                                original[max(-dy, 0):16 - max(dy, 0), max(-dx, 0):16 - max(dx, 0)])]
        assert found, "each image is a shifted copy of its original"
        moved += found[0] != (0, 0)
    assert moved >= 4


def test_cutout_zeroes_one_square_and_color_changes_values():
    x = _images() * 0 + 0.5
    out = keras.ops.convert_to_numpy(diff_augment(x, ("cutout",), keras.random.SeedGenerator(2)))
    zeros = (out == 0).all(axis=-1).sum(axis=(1, 2))
    assert (zeros > 0).all() and (zeros <= 64).all()  # at most an 8x8 square of a 16x16 image
    colored = keras.ops.convert_to_numpy(diff_augment(_images(), ("color",), keras.random.SeedGenerator(3)))
    assert not np.allclose(colored, _images())


def test_augmentation_is_differentiable():
    x = tf.Variable(_images())
    with tf.GradientTape() as tape:
        y = diff_augment(x, parse_policy("color,translation,cutout"), keras.random.SeedGenerator(4))
        loss = tf.reduce_sum(y ** 2)
    grad = tape.gradient(loss, x)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_policy_parsing():
    assert parse_policy("") == () and parse_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="flip"):
        parse_policy("color,flip")


def test_training_with_diffaugment_runs(tiny_demo):
    from dcgan.data.pipeline import make_dataset
    from dcgan.training.loop import build_gan

    config = tiny_demo.replace(diffaugment="color,translation,cutout")
    dataset, _ = make_dataset(config)
    history = build_gan(config).fit(dataset, epochs=1, steps_per_epoch=3, verbose=0).history
    assert np.isfinite(history["d_loss"][-1]) and np.isfinite(history["g_loss"][-1])
