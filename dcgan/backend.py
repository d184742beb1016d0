"""The running Keras backend's step code (dcgan.backends.<name>), chosen once, at import.

The GAN's `train_step` (dcgan.training.gan) is written once, in a stateful style, with `keras.ops`;
what cannot be written that way on every backend is in one module per backend
(`dcgan/backends/tensorflow.py`, `jax.py`, `torch.py`: gradient tapes, autograd, pure JAX
functions; tf.distribute replicas; input feeding; a faster image decoder).  This module
picks the one Keras runs on and adds the little that is the same on all of them.
"""

from __future__ import annotations

import importlib

import keras

_impl = importlib.import_module(f"dcgan.backends.{keras.backend.backend()}")

# minimise one loss over some variables; `extra_gradients` (e.g. penalty_gradients') are added
gradient_step = _impl.gradient_step
# a gradient penalty such as R1: gradients over variables of penalty(d objective / d inputs),
# computed only when the boolean tensor `active` is true (lazy regularisation), else zeros
penalty_gradients = _impl.penalty_gradients
apply_gradients = _impl.apply_gradients
# run fn() once; pullback(cotangent) gives d<output . cotangent>/d variables later
forward_with_pullback = _impl.forward_with_pullback
# (aux, d objective / dx) for fn(x) -> (objective, aux)
input_grad = _impl.input_grad
# outside training: input_gradients(model, loss_fn)(x, *targets) -> numpy (losses, d sum / dx),
# compiled where the backend compiles (latent projection)
input_gradients = _impl.input_gradients
no_grad = _impl.no_grad  # a context for bookkeeping (EMA, metrics) autograd must not record
replicas = _impl.replicas  # (replicas of the tf.distribute step, this one's index); (1, 0) elsewhere
replica_mean = _impl.replica_mean  # a value every replica must agree on (e.g. ADA's p)
step_logs = _impl.step_logs  # the step's logs as the backend's trainer can reduce them
stateless_train_step = _impl.stateless_train_step  # JAX: train_step(state, data) -> (logs, state)
step_scope = getattr(_impl, "step_scope", None)  # JAX: tests run a step's pieces inside one
feed = _impl.feed  # feed(reader, shape): endless batches reader(0), reader(1), ... for fit()
decode_all = _impl.decode_all  # a faster decoder than Pillow's, or None
# inside fit(): make the model's variables hold the newest values (JAX keeps them in the
# trainer's state between epochs) before a mid-epoch checkpoint or grid reads them
sync_state = getattr(_impl, "sync_state", lambda model: None)


def name() -> str:
    return keras.backend.backend()


def replica_share(draw, batch_size, *rest):
    """`draw(shape)` for this replica's part of the global batch: every replica draws the whole
    global batch from the same stream and keeps its own slice, so latents and label noise
    differ per replica and are those a single device would draw."""
    count, index = replicas()
    if count == 1:
        return draw((batch_size, *rest))
    full = draw((batch_size * count, *rest))
    return keras.ops.slice(full, [index * batch_size] + [0] * len(rest), [batch_size, *rest])


def global_loss(loss):
    """A per-replica loss as it means on one device: Keras losses divide by the number of
    replicas under tf.distribute (so that summed gradients are the global mean's)."""
    count, _ = replicas()
    return loss * count if count > 1 else loss
