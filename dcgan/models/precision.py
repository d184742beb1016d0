"""Mixed precision: which one a run uses, building networks under it, and loss scaling.

Under `mixed_float16` / `mixed_bfloat16` the layers compute in half precision and
keep float32 weights; the layers that must stay exact are float32 in every policy
(the generator's tanh image, the discriminator's logit: dcgan.models.architectures), so losses,
EMA weights, samples and exports are float32.  float16's narrow range needs loss
scaling: each of the two optimizers is wrapped in its own Keras
`LossScaleOptimizer`, so D's and G's losses are scaled and unscaled separately, a
step whose gradients are not finite is skipped for that network only and its
scale halved, and both scales are part of the checkpoint (dcgan.training.checkpoint).
"""

from __future__ import annotations

import contextlib

import keras

COMPUTE_DTYPE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16", "float32": "float32"}


def compute_dtype(policy: str) -> str:
    """The dtype the layers compute in under `policy`."""
    return COMPUTE_DTYPE[policy]


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Layers created inside get `policy` (Keras' global policy, restored afterwards)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def optimizer_for(policy: str, optimizer):
    """`optimizer`, wrapped for dynamic loss scaling where `policy` computes in float16."""
    if policy == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_scaled")
    return optimizer


def inner_optimizer(optimizer):
    """The optimizer that updates the weights (inside a LossScaleOptimizer, if any)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def loss_scale_variables(optimizer) -> list:
    """A LossScaleOptimizer's own state (steps since the last rise, the scale); [] otherwise."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return [optimizer.step_counter, optimizer.dynamic_scale]
    return []


def loss_scale(optimizer) -> float | None:
    """The current loss scale of `optimizer`, or None without loss scaling."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return float(keras.ops.convert_to_numpy(optimizer.dynamic_scale.value))
    return None


def float32_copy(model: keras.Model) -> keras.Model:
    """`model` rebuilt with every layer in float32 and the same weights (for exports:
    a `.keras` file that runs at full precision anywhere; BatchNorm not synchronized
    across replicas, which only TensorFlow could load).  Wrapped layers (SpectralNorm's
    convolution) are converted too."""
    def as_float32(layer):
        return layer.__class__.from_config(_float32_config(layer.get_config()))

    if all(not _needs_conversion(layer) for layer in model.layers):
        return model
    copy = keras.models.clone_model(model, clone_function=as_float32)
    copy.set_weights(model.get_weights())
    return copy


def _needs_conversion(layer) -> bool:
    inner = getattr(layer, "layer", None)  # a Wrapper's layer
    return (layer.dtype_policy.name != "float32" or bool(getattr(layer, "synchronized", False))
            or (isinstance(inner, keras.layers.Layer) and _needs_conversion(inner)))


def _float32_config(config: dict) -> dict:
    config = dict(config)
    if "dtype" in config:
        config["dtype"] = "float32"
    if config.get("synchronized"):
        config["synchronized"] = False
    inner = config.get("layer")
    if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
        config["layer"] = {**inner, "config": _float32_config(inner["config"])}
    return config
