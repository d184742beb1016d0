"""A short training run on the demo faces must move the generator towards the data."""

import keras
import pytest
import numpy as np

from dcgan.data.pipeline import load_real_images, make_dataset
from dcgan.training.loop import build_gan
from dcgan.outputs.sampling import generate


def test_training_pulls_mean_image_towards_the_data(tiny_demo):
    config = tiny_demo.replace(demo_images=2048, batch_size=32, g_widths=(64, 32))
    keras.utils.set_random_seed(config.seed)
    dataset, _ = make_dataset(config)
    gan = build_gan(config)
    real_mean = (load_real_images(config) / 127.5 - 1.0).mean(axis=0)

    def distance():
        return float(np.sqrt(((generate(gan, 512, seed=99).mean(axis=0) - real_mean) ** 2).mean()))

    before = distance()
    gan.fit(dataset, epochs=1, steps_per_epoch=600, verbose=0)
    after = distance()
    assert after <= 0.5 * before, (before, after)


def _swd_before_and_after_training(config):
    from dcgan.data.demo_faces import demo_faces
    from dcgan.evaluation.scoring import fake_set
    from dcgan.evaluation.metrics import sliced_wasserstein

    keras.utils.set_random_seed(config.seed)
    dataset, _ = make_dataset(config)
    gan = build_gan(config)
    held_out = demo_faces(256, config.image_size, seed=77)

    def swd(generator):
        return sliced_wasserstein(held_out, fake_set(generator, 256), patches_per_image=64)["swd_x1e3_avg"]

    untrained = swd(gan.generator)
    gan.fit(dataset, epochs=1, steps_per_epoch=600, verbose=0)
    return untrained, swd(gan.generator), swd(gan.ema_generator), gan, held_out


@pytest.mark.backends
def test_gan_regression_swd_drops_well_below_the_untrained_generator(tiny_demo):
    """Fails if the label convention or the optimizer wiring breaks; and, since SWD normalises
    each channel (blind to a shifted or squashed value range), if the data scaling breaks."""
    from dcgan.evaluation.scoring import fake_set

    config = tiny_demo.replace(demo_images=2048, batch_size=32, g_widths=(64, 32))
    untrained, trained, ema, gan, held_out = _swd_before_and_after_training(config)
    assert trained < 0.5 * untrained, (untrained, trained)
    assert ema < 0.5 * untrained, (untrained, ema)
    fakes = fake_set(gan.ema_generator, 256).astype(np.float32)
    real = held_out.astype(np.float32)
    # the faces' brightness and contrast per channel, in uint8 levels
    assert np.abs(fakes.mean((0, 1, 2)) - real.mean((0, 1, 2))).max() < 20
    assert 0.4 < (fakes.std((0, 1, 2)) / real.std((0, 1, 2))).min() <= (
        fakes.std((0, 1, 2)) / real.std((0, 1, 2))).max() < 1.5


def test_a_mixed_bfloat16_run_learns_as_well(tiny_demo):
    """The same criterion in bfloat16 (float32 weights, float32 tanh image and D logit)."""
    config = tiny_demo.replace(demo_images=2048, batch_size=32, g_widths=(64, 32),
                               precision="mixed_bfloat16")
    untrained, trained, ema, gan, _ = _swd_before_and_after_training(config)
    assert trained < 0.5 * untrained, (untrained, trained)
    assert ema < 0.5 * untrained, (untrained, ema)
    # bfloat16 really ran: the layers compute in it, their weights stay float32
    # (the image and the logit layers compute in float32 by design)
    convolutions = [layer for layer in gan.generator.layers + gan.discriminator.layers
                    if layer.weights and "conv" in type(layer).__name__.lower()
                    and layer.name not in ("to_rgb", "logit_conv")]
    assert len(convolutions) >= 4 and {layer.compute_dtype for layer in convolutions} == {"bfloat16"}
    assert {w.dtype for layer in convolutions for w in layer.weights} == {"float32"}


def test_the_demo_preset_learns_with_its_r1_penalty(tiny_demo):
    """The demo preset trains with R1 (gamma 0.1, every 16 steps; eager on a TensorFlow CPU):
    the same criterion as above, with the penalty on."""
    from dcgan.config import Config

    assert Config.from_preset("demo").r1_gamma == 0.1
    config = tiny_demo.replace(demo_images=2048, batch_size=32, g_widths=(64, 32), r1_gamma=0.1)
    untrained, trained, ema, gan, _ = _swd_before_and_after_training(config)
    assert trained < 0.5 * untrained, (untrained, trained)
    assert ema < 0.5 * untrained, (untrained, ema)
    assert int(gan.d_optimizer.iterations) == 600
