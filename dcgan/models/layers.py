"""The layers the architectures add to Keras': ICNR (a checkerboard-free start for strided
transposed convolutions) and SpectralNorm.  Registered with Keras under `dcgan>`, so a `.keras`
file that uses them loads with `safe_mode=True` once this module is imported."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="dcgan")
class ICNR(keras.initializers.Initializer):
    """Checkerboard-free start for a strided Conv2DTranspose (Aitken et al. 2017, "ICNR"):
    Keras' Glorot-uniform draw, with each `stride`x`stride` block of kernel taps set to one
    value, so every output phase gets the same weights and the layer begins as
    nearest-neighbour upsampling followed by a convolution.  Training then moves the taps
    apart only as far as the loss asks."""

    def __init__(self, stride=2, seed=None):
        self.stride, self.seed = int(stride), seed

    def __call__(self, shape, dtype=None):
        s = self.stride
        if shape[0] % s or shape[1] % s:
            raise ValueError(f"ICNR needs a kernel divisible by the stride {s}, got {shape[:2]}")
        full = keras.initializers.GlorotUniform(seed=self.seed)(shape, dtype)
        taps = full[::s, ::s]  # one draw per block, at Glorot's scale for the whole kernel
        return ops.repeat(ops.repeat(taps, s, axis=0), s, axis=1)

    def get_config(self):
        return {"stride": self.stride, "seed": self.seed}


@keras.saving.register_keras_serializable(package="dcgan")
class SpectralNorm(layers.Wrapper):
    """Spectral normalization (Miyato et al. 2018) of a linear Dense or Conv2D layer: its
    output as if its kernel were divided by the kernel's largest singular value, estimated
    by one power iteration per training call.

    Unlike `keras.layers.SpectralNormalization`, the kernel is never overwritten: the
    layer's output is rescaled instead (linear: conv(x, W / s) = conv(x, W) / s), so the
    same weights can be used twice in one step on every backend (PyTorch's autograd
    refuses a kernel changed in place between the two discriminator calls).  The
    power-iteration vector `vector_u` is a non-trainable weight, kept in checkpoints.
    """

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        units = self.layer.kernel.shape[-1]
        self.vector_u = self.add_weight(
            shape=(1, units), initializer=keras.initializers.RandomNormal(seed=0),
            trainable=False, name="vector_u", dtype="float32")
        self.built = True

    def call(self, inputs, training=False):
        kernel = ops.cast(self.layer.kernel, "float32")
        w = ops.reshape(kernel, (-1, ops.shape(kernel)[-1]))
        fixed = ops.stop_gradient(w)  # the power iteration is a constant for the gradient
        v = _unit(ops.matmul(self.vector_u, ops.transpose(fixed)))
        u = _unit(ops.matmul(v, fixed)) if training else ops.convert_to_tensor(self.vector_u)
        if training:
            self.vector_u.assign(u)
        sigma = ops.sum(ops.matmul(v, w) * u)
        outputs = self.layer(inputs)
        scale = ops.cast(1.0 / sigma, outputs.dtype)
        if getattr(self.layer, "use_bias", False):
            bias = ops.cast(self.layer.bias, outputs.dtype)
            return (outputs - bias) * scale + bias
        return outputs * scale

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def _unit(x):
    return x / (ops.sqrt(ops.sum(ops.square(x))) + 1e-12)


# --------------------------------------------------------- Radford's DCGAN
