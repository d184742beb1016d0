"""A small attribute classifier: images in [-1, 1] -> one logit per attribute (high = has it).

It labels generated faces for attribute directions (dcgan.editing.directions, as InterFaceGAN
labels its samples) and scores how far an edit moved each attribute.  Built-in layers only, so
its `.keras` file loads with `safe_mode=True`.
"""

from __future__ import annotations

import keras
from keras import layers


def build_attribute_classifier(image_size: int, attributes: int, width: int = 32,
                               seed: int = 0) -> keras.Model:
    """Strided 3x3 convolutions (width, 2x, 4x ... channels) down to 4x4, flattened, Dense."""
    init = keras.initializers.HeNormal(seed)
    image = keras.Input((image_size, image_size, 3), name="image")
    x, side, channels = image, image_size, width
    while side > 4:
        x = layers.Conv2D(channels, 3, strides=2, padding="same", use_bias=False,  # no bias: TF fuses
                          kernel_initializer=init)(x)  # conv+LeakyReLU cleanly only without one
        x = layers.LeakyReLU(0.2)(x)
        side, channels = side // 2, min(channels * 2, 8 * width)
    x = layers.Conv2D(channels, 3, padding="same", use_bias=False, kernel_initializer=init)(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)  # where things are matters (a smile is the mouth bent up)
    logits = layers.Dense(attributes, name="logits", kernel_initializer=keras.initializers.GlorotUniform(seed))(x)
    return keras.Model(image, logits, name="attribute_classifier")
