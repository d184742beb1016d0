import keras
import numpy as np
import pytest

from dcgan.data.pipeline import make_dataset
from dcgan.outputs.sampling import generate, latents_for
from dcgan.training.gan import DCGAN
from dcgan.models.architectures import build_discriminator, build_generator
from dcgan.training.loop import build_gan

pytestmark = pytest.mark.backends  # every test here also runs on JAX and PyTorch (test_backends)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_discriminator_targets_real_zero_fake_one_with_noise(tiny_demo):
    gan = build_gan(tiny_demo)
    real, fake = (_np(t) for t in gan.discriminator_targets(4096))
    a = tiny_demo.label_noise
    assert real.shape == fake.shape == (4096, 1)
    # real = 0 plus noise pulling towards fake; fake = 1 minus noise pulling towards real.
    assert real.min() >= 0 and real.max() <= a
    assert fake.min() >= 1 - a and fake.max() <= 1
    # The noise is really there, uniform over the whole band, on both sides.
    assert real.std() > a / 4 and fake.std() > a / 4
    assert abs(real.mean() - a / 2) < a / 10 and abs(fake.mean() - (1 - a / 2)) < a / 10
    # Fresh noise every call.
    assert not np.array_equal(real, _np(gan.discriminator_targets(4096)[0]))


def test_generator_targets_say_real_without_noise(tiny_demo):
    np.testing.assert_array_equal(_np(build_gan(tiny_demo).generator_targets(8)), np.zeros((8, 1)))


def test_one_sided_smoothing_touches_only_the_real_side(tiny_demo):
    gan = build_gan(tiny_demo.replace(label_mode="one_sided", label_smoothing=0.1))
    real, fake = (_np(t) for t in gan.discriminator_targets(64))
    np.testing.assert_allclose(real, 0.1)
    np.testing.assert_array_equal(fake, 1.0)


def test_train_step_teaches_d_that_real_is_zero(tiny_demo):
    """Fails if the real and fake labels are swapped anywhere in the step."""
    # Hold G still; let D learn at a rate of its own (not the preset's, which may change).
    config = tiny_demo.replace(g_learning_rate=1e-9, d_learning_rate=2e-4)
    keras.utils.set_random_seed(config.seed)
    dataset, _ = make_dataset(config)
    gan = build_gan(config)
    history = gan.fit(dataset, epochs=3, steps_per_epoch=15, verbose=0).history
    assert set(history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert history["d_real"][-1] < 0.3 and history["d_fake"][-1] > 0.7


def test_train_step_updates_each_network_with_its_own_optimizer(tiny_demo):
    dataset, _ = make_dataset(tiny_demo)
    gan = build_gan(tiny_demo)
    g_before = [w.copy() for w in gan.generator.get_weights()]
    d_before = [w.copy() for w in gan.discriminator.get_weights()]
    gan.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)
    assert int(_np(gan.d_optimizer.iterations.value)) == 2
    assert int(_np(gan.g_optimizer.iterations.value)) == 2
    assert any(not np.array_equal(a, b) for a, b in zip(g_before, gan.generator.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(d_before, gan.discriminator.get_weights()))


def test_same_seed_same_first_losses(tiny_demo):
    def first_losses():
        keras.utils.set_random_seed(tiny_demo.seed)
        dataset, _ = make_dataset(tiny_demo)
        gan = build_gan(tiny_demo)
        return gan.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0).history

    assert first_losses() == first_losses()


def test_generate_is_in_range_and_reproducible(tiny_demo):
    gan = build_gan(tiny_demo)
    a = generate(gan, 5, seed=3)
    assert a.shape == (5, 16, 16, 3) and a.dtype == np.float32
    assert a.min() >= -1 and a.max() <= 1
    np.testing.assert_array_equal(a, generate(gan, 5, seed=3))
    assert not np.array_equal(a, generate(gan, 5, seed=4))
    np.testing.assert_array_equal(latents_for(5, 32, 3), latents_for(5, 32, 3))


def test_unknown_label_mode_is_refused(tiny_demo):
    with pytest.raises(ValueError, match="label_mode"):
        DCGAN(build_generator(tiny_demo), build_discriminator(tiny_demo), label_mode="flipped")


def test_ema_generator_tracks_the_generator_smoothly(tiny_demo):
    config = tiny_demo.replace(ema_decay=0.9)
    dataset, _ = make_dataset(config)
    gan = build_gan(config)
    assert gan.sampling_generator is gan.ema_generator
    start = [_np(w).copy() for w in gan.generator.trainable_weights]
    np.testing.assert_array_equal(_np(gan.ema_generator.trainable_weights[0]), start[0])
    gan.fit(dataset, epochs=1, steps_per_epoch=40, verbose=0)
    raw = [_np(w) for w in gan.generator.trainable_weights]
    ema = [_np(w) for w in gan.ema_generator.trainable_weights]
    # The average moved with training, but lags behind the raw weights: it sits between.
    for w0, w, e in zip(start, raw, ema):
        if w0.size > 10 and not np.array_equal(w0, w):
            assert 0 < np.abs(e - w).mean() < np.abs(w0 - w).mean()
    assert not np.array_equal(generate(gan, 4, seed=1), _np(gan.generator(
        latents_for(4, config.latent_dim, 1), training=False)))
    # BatchNorm's running statistics are the generator's own, copied (StyleGAN2-ADA's way), not
    # an average of past ones: they describe what the current weights produce.
    statistics = [(e, g) for e, g in zip(gan.ema_generator.non_trainable_weights,
                                         gan.generator.non_trainable_weights) if "moving" in g.path]
    assert len(statistics) >= 4
    for e, g in statistics:
        np.testing.assert_array_equal(_np(e), _np(g))
    off = build_gan(tiny_demo.replace(ema_decay=0.0))
    assert off.ema_generator is None and off.sampling_generator is off.generator


@pytest.mark.parametrize("reuse_fakes", [False, True])
def test_generator_step_learns_to_fool_a_fixed_discriminator(tiny_demo, reuse_fakes):
    """The G step's gradient (through fresh fakes, or pulled back through the D step's
    fakes) is a descent direction: against a frozen D, the generator's loss falls."""
    config = tiny_demo.replace(d_learning_rate=1e-12, g_learning_rate=2e-3, ema_decay=0.0,
                               reuse_fakes=reuse_fakes)
    keras.utils.set_random_seed(config.seed)
    dataset, _ = make_dataset(config)
    gan = build_gan(config)
    assert gan.reuse_fakes is reuse_fakes
    history = gan.fit(dataset, epochs=4, steps_per_epoch=10, verbose=0).history
    g_loss, d_fake = history["g_loss"], history["d_fake"]
    assert g_loss[-1] < 0.7 * g_loss[0], g_loss
    # ...and it falls because G learns to make the frozen D say "real" (0): a G trained towards
    # "fake" would also lower its own loss, but raise d_fake
    assert d_fake[-1] < d_fake[0] - 0.1, d_fake
