"""A short training run on the demo faces must move the generator towards the data."""

import keras
import numpy as np

from dcgan.data import load_real_images, make_dataset
from dcgan.images import to_unit_range
from dcgan.training import build_gan


def test_training_pulls_mean_image_towards_the_data(tiny_demo):
    config = tiny_demo.replace(demo_images=2048, batch_size=32, g_widths=(64, 32))
    keras.utils.set_random_seed(config.seed)
    dataset, _ = make_dataset(config)
    gan = build_gan(config)
    real_mean = to_unit_range(load_real_images(config)).mean(axis=0)

    def distance():
        return float(np.sqrt(((gan.generate(512, seed=99).mean(axis=0) - real_mean) ** 2).mean()))

    before = distance()
    gan.fit(dataset.repeat(), epochs=1, steps_per_epoch=600, verbose=0)
    after = distance()
    assert after <= 0.5 * before, (before, after)
