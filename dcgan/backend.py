"""Everything in the training step that differs between Keras backends, and nothing else.

The GAN's `train_step` (dcgan.gan) is written once, in a stateful style, with
`keras.ops`.  These cannot be written that way on every backend:

- `gradient_step(loss_fn, variables, optimizer)`: minimise one loss over some
  variables: TensorFlow records a `GradientTape`; PyTorch runs autograd
  (`backward`, then `optimizer.apply` without grad); JAX differentiates a pure
  function of the variables' values (`jax.value_and_grad`).
- `penalty_gradients(...)`: a gradient penalty such as R1 differentiates a
  gradient (with respect to the images) once more, with respect to the weights:
  nested tapes, `create_graph=True`, or `jax.grad` of `jax.grad`.
- `stateless_train_step(model, step, state, data)`: Keras' JAX trainer calls
  `train_step(state, data)` and wants the new state back.  The step runs inside
  a `keras.StatelessScope` that maps every variable of the state to its value,
  so the same stateful-looking code (optimizer updates, BatchNorm statistics,
  the random-generator state, EMA weights, metrics) only records new values,
  which are returned in the same order as they came.
"""

from __future__ import annotations

import contextlib

import keras
from keras import StatelessScope



def name() -> str:
    return keras.backend.backend()


def gradient_step(loss_fn, variables, optimizer, extra_gradients=None):
    """Minimise `loss_fn()` over `variables` with `optimizer`; return (loss, aux).

    `loss_fn` takes no arguments and returns (loss, aux); it may update other
    state (BatchNorm statistics, the random generator) as a side effect.  The
    gradient is taken of `optimizer.scale_loss(loss)` (a LossScaleOptimizer
    unscales it and skips a step whose gradients are not finite).
    `extra_gradients` (same scale, e.g. from `penalty_gradients`) are added to it.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, aux = loss_fn()
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
    elif backend == "torch":
        for variable in variables:  # the other network's gradients are never read
            variable.value.grad = None
        loss, aux = loss_fn()
        optimizer.scale_loss(loss).backward()
        grads = [v.value.grad for v in variables]
    elif backend == "jax":
        return _jax_gradient_step(loss_fn, variables, optimizer, extra_gradients)
    else:
        raise NotImplementedError(f"no training step for the {backend!r} backend")
    apply_gradients(optimizer, _add(grads, extra_gradients), variables)
    return loss, aux


def _add(grads, extra):
    if extra is None:
        return grads
    return [e if g is None else g + e for g, e in zip(grads, extra)]


def penalty_gradients(objective, inputs, penalty, variables, optimizer, active):
    """Gradients over `variables` of `optimizer.scale_loss(penalty(g))`, where `g` is the
    gradient of the scalar `objective(inputs)` with respect to `inputs` (a gradient penalty
    such as R1: a second-order derivative); zeros unless the boolean tensor `active` is
    true, and then only is it computed (the lazy regularisation of StyleGAN2).
    Side effects of `objective` (BatchNorm statistics, random draws) may or may not stick."""
    backend = name()
    zeros = [keras.ops.zeros(v.shape, v.dtype) for v in variables]
    if backend == "tensorflow":
        import tensorflow as tf

        def compute():
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(inputs)
                    value = objective(inputs)
                loss = optimizer.scale_loss(penalty(inner.gradient(value, inputs)))
            grads = outer.gradient(loss, variables)
            return [z if g is None else tf.cast(g, z.dtype) for g, z in zip(grads, zeros)]

        if replicas()[0] > 1:
            # tf.distribute refuses a synchronisation point (synchronized BatchNorm) inside
            # tf.cond: on several replicas the penalty is computed every step, kept when due.
            keep = tf.cast(active, "float32")
            return [g * tf.cast(keep, g.dtype) for g in compute()]
        return tf.cond(active, compute, lambda: zeros)
    if backend == "torch":
        import torch

        if not bool(active):  # eager: the branch not taken costs nothing
            return zeros
        leaf = inputs.detach().requires_grad_(True)
        grad = torch.autograd.grad(objective(leaf), leaf, create_graph=True)[0]
        loss = optimizer.scale_loss(penalty(grad))
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
        return [z if g is None else g for g, z in zip(grads, zeros)]
    if backend == "jax":
        import jax

        scope, _, call = _jax_pure(objective, variables)

        def loss_of(values):
            grad = jax.grad(lambda x: call(values, x)[0])(inputs)
            return optimizer.scale_loss(penalty(grad))

        current = [scope.get_current_value(v) for v in variables]
        # Only the branch taken runs; the objective's side effects are dropped.
        return jax.lax.cond(active, jax.grad(loss_of), lambda values: zeros, current)
    raise NotImplementedError(f"no training step for the {backend!r} backend")


def apply_gradients(optimizer, grads, variables):
    """`optimizer.apply(grads, variables)`, as each backend's step needs it."""
    backend = name()
    if backend == "jax":  # pure: a LossScaleOptimizer's cond must not assign from inside
        scope = _step_scope
        state = optimizer.variables
        new_values, new_state = optimizer.stateless_apply(
            [scope.get_current_value(v) for v in state], grads,
            [scope.get_current_value(v) for v in variables])
        _assign(variables, new_values)
        _assign(state, new_state)
    elif backend == "torch":
        import torch

        with torch.no_grad():
            optimizer.apply(grads, variables)
    else:
        optimizer.apply(grads, variables)


# ------------------------------------------------------------------ replicas
def replicas() -> tuple[int, object]:
    """(number of replicas, this replica's index) of the tf.distribute strategy running the
    step; (1, 0) elsewhere (JAX's DataParallel runs one program over the global batch)."""
    if name() != "tensorflow":
        return 1, 0
    import tensorflow as tf

    count = tf.distribute.get_strategy().num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    return count, (context.replica_id_in_sync_group if context is not None and count > 1 else 0)


def replica_share(draw, batch_size, *rest):
    """`draw(shape)` for this replica's part of the global batch: every replica draws the whole
    global batch from the same stream and keeps its own slice, so latents and label noise
    differ per replica and are those a single device would draw."""
    count, index = replicas()
    if count == 1:
        return draw((batch_size, *rest))
    full = draw((batch_size * count, *rest))
    return keras.ops.slice(full, [index * batch_size] + [0] * len(rest), [batch_size, *rest])


def replica_mean(value):
    """The mean of `value` over the replicas of a tf.distribute step (itself elsewhere):
    a quantity every replica must agree on, such as the adaptive augmentation strength."""
    count, _ = replicas()
    if count == 1:
        return value
    import tensorflow as tf

    return tf.distribute.get_replica_context().all_reduce("mean", value)


def global_loss(loss):
    """A per-replica loss as it means on one device: Keras losses divide by the number of
    replicas under tf.distribute (so that summed gradients are the global mean's)."""
    count, _ = replicas()
    return loss * count if count > 1 else loss


def step_logs(logs: dict) -> dict:
    """The train_step's logs as Keras' trainer can reduce them.  Across TensorFlow workers
    (MultiWorkerMirroredStrategy) Keras averages each log over axis 0, which a scalar
    lacks: there each is a 1-vector, and Keras' mean makes it a scalar again."""
    if name() != "tensorflow":
        return logs
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    # The test Keras' own reduce_per_replica makes.
    if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()):
        return {k: tf.reshape(v, (1,)) for k, v in logs.items()}
    return logs


def no_grad():
    """A context for bookkeeping arithmetic (EMA, metrics) that autograd must not record."""
    if name() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------- JAX
_step_scope = None  # the _StepScope of the JAX step being traced


class _StepScope(StatelessScope):
    """The outer scope of a JAX step: remembers which variables it maps, in order."""

    def __init__(self, variables, values):
        super().__init__(list(zip(variables, values)))
        self.variables = variables


def stateless_train_step(model, step, state, data):
    """Run `step(data)` (stateful style) as Keras' JAX trainer wants: (logs, new state).

    `state` is (trainable, non_trainable, optimizer, metrics) values in the order of
    the model's `trainable_variables`, `non_trainable_variables`,
    `optimizer.variables` and `metrics_variables`.
    """
    groups = (model.trainable_variables, model.non_trainable_variables,
              model.optimizer.variables, model.metrics_variables)
    variables = [v for group in groups for v in group]
    values = [value for part in state for value in part]
    with step_scope(variables, values) as scope:
        logs = step(data)
    return logs, tuple([scope.get_current_value(v) for v in group] for group in groups)


@contextlib.contextmanager
def step_scope(variables, values):
    """JAX: run stateful-style step code over `variables` mapped to `values` (what
    `stateless_train_step` does; tests call the step's pieces inside one)."""
    global _step_scope
    with _StepScope(variables, values) as scope:
        _step_scope = scope
        try:
            yield scope
        finally:
            _step_scope = None


def _jax_gradient_step(loss_fn, variables, optimizer, extra_gradients=None):
    import jax

    scope, others, call = _jax_pure(loss_fn, variables)

    def scaled_loss_of(values):
        (loss, aux), updates = call(values)
        return optimizer.scale_loss(loss), (loss, aux, updates)

    current = [scope.get_current_value(v) for v in variables]
    (_, (loss, aux, updates)), grads = jax.value_and_grad(scaled_loss_of, has_aux=True)(current)
    _assign(others, updates)
    apply_gradients(optimizer, _add(grads, extra_gradients), variables)
    return loss, aux


# ------------------------------------------------ one generator forward for both steps
def forward_with_pullback(fn, variables):
    """Run `fn()` (e.g. the generator) once; return (output, pullback) where
    `pullback(cotangent)` gives d<output . cotangent>/d`variables` later, without
    running `fn` again (the D step's fakes reused by the G step)."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        tape = tf.GradientTape()
        with tape:
            output = fn()
        return output, lambda cotangent: tape.gradient(output, variables,
                                                       output_gradients=cotangent)
    if backend == "torch":
        import torch

        output = fn()
        return output, lambda cotangent: list(torch.autograd.grad(
            output, [v.value for v in variables], cotangent))
    if backend == "jax":
        import jax

        scope, others, call = _jax_pure(fn, variables)
        output, vjp, updates = jax.vjp(call, [scope.get_current_value(v) for v in variables],
                                       has_aux=True)
        _assign(others, updates)
        return output, lambda cotangent: vjp(cotangent)[0]
    raise NotImplementedError(f"no training step for the {backend!r} backend")


def input_grad(fn, x):
    """(aux, d objective / dx) where `fn(x)` returns (objective, aux), a scalar objective of a
    tensor `x` (no variable is differentiated; side effects such as BatchNorm statistics
    are kept)."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            objective, aux = fn(x)
        return aux, tape.gradient(objective, x)
    if backend == "torch":
        import torch

        leaf = x.detach().requires_grad_(True)
        objective, aux = fn(leaf)
        return aux, torch.autograd.grad(objective, leaf)[0]
    if backend == "jax":
        import jax

        _, others, call = _jax_pure(fn, [])

        def objective_of(x):
            (objective, aux), updates = call([], x)
            return objective, (aux, updates)

        (_, (aux, updates)), grad = jax.value_and_grad(objective_of, has_aux=True)(x)
        _assign(others, updates)
        return aux, grad
    raise NotImplementedError(f"no training step for the {backend!r} backend")


def _jax_pure(fn, variables):
    """`fn(*args)` (stateful style) as a pure function `call(values, *args)` of `variables`'
    values -> (output, updates of the other variables)."""
    scope = _step_scope
    if scope is None:
        raise RuntimeError("on JAX the GAN's train_step runs only inside fit() "
                           "(backend.stateless_train_step)")
    differentiated = {id(v) for v in variables}
    others = [v for v in scope.variables if id(v) not in differentiated]

    def call(values, *args):
        mapping = [(v, scope.get_current_value(v)) for v in others] + list(zip(variables, values))
        with StatelessScope(mapping) as inner:
            output = fn(*args)
        # Side effects (BatchNorm statistics, random-generator state) leave as outputs.
        return output, [inner.get_current_value(v) for v in others]

    return scope, others, call


def _assign(variables, values):
    for variable, value in zip(variables, values):
        variable.assign(value)  # recorded by the outer scope
