"""JAX: pure functions of the variables' values, differentiated by jax.grad / jax.vjp.

Keras' JAX trainer calls `train_step(state, data)` and wants the new state back.
`stateless_train_step` runs the GAN's stateful-style step inside a `keras.StatelessScope`
that maps every variable of the state to its value, so the same code (optimizer updates,
BatchNorm statistics, the random-generator state, EMA weights, metrics) only records new
values, which are returned in the order they came.  Inside it, each gradient is taken of a
pure function (`_pure`) of the differentiated variables' values.
"""

from __future__ import annotations

import contextlib

import jax  # this module is only imported when Keras runs on JAX
import keras
from keras import StatelessScope

from dcgan.backends import add_gradients, one_replica, pydataset, unchanged

replicas = one_replica
replica_mean = step_logs = unchanged
feed = pydataset.feed  # Keras feeds JAX from a PyDataset

decode_all = None  # Pillow's decoder (dcgan.data.decode): a JAX runtime may have no TensorFlow

_step_scope = None  # the _StepScope of the step being traced


def sync_state(model) -> None:
    """Inside fit(), Keras' JAX trainer holds the newest values in its own state (the model's
    variables are purged); write them back, and the trainer reads them again next step."""
    model.jax_state_sync()


class _StepScope(StatelessScope):
    """The outer scope of a step: remembers which variables it maps, in order."""

    def __init__(self, variables, values):
        super().__init__(list(zip(variables, values, strict=True)))
        self.variables = variables


def stateless_train_step(model, step, state, data):
    """Run `step(data)` (stateful style) as Keras' JAX trainer wants: (logs, new state).

    `state` is (trainable, non_trainable, optimizer, metrics) values in the order of
    the model's `trainable_variables`, `non_trainable_variables`,
    `optimizer.variables` and `metrics_variables`."""
    groups = (model.trainable_variables, model.non_trainable_variables,
              model.optimizer.variables, model.metrics_variables)
    variables = [v for group in groups for v in group]
    values = [value for part in state for value in part]
    with step_scope(variables, values) as scope:
        logs = step(data)
    return logs, tuple([scope.get_current_value(v) for v in group] for group in groups)


@contextlib.contextmanager
def step_scope(variables, values):
    """Run stateful-style step code over `variables` mapped to `values` (what
    `stateless_train_step` does; tests call the step's pieces inside one)."""
    global _step_scope
    with _StepScope(variables, values) as scope:
        _step_scope = scope
        try:
            yield scope
        finally:
            _step_scope = None


def gradient_step(loss_fn, variables, optimizer, extra_gradients=None):
    scope, others, call = _pure(loss_fn, variables)

    def scaled_loss_of(values):
        (loss, aux), updates = call(values)
        return optimizer.scale_loss(loss), (loss, aux, updates)

    current = [scope.get_current_value(v) for v in variables]
    (_, (loss, aux, updates)), grads = jax.value_and_grad(scaled_loss_of, has_aux=True)(current)
    _assign(others, updates)
    apply_gradients(optimizer, add_gradients(grads, extra_gradients), variables)
    return loss, aux


def penalty_gradients(objective, inputs, penalty, variables, optimizer, active):
    zeros = [keras.ops.zeros(v.shape, v.dtype) for v in variables]
    scope, _, call = _pure(objective, variables)

    def loss_of(values):
        grad = jax.grad(lambda x: call(values, x)[0])(inputs)
        return optimizer.scale_loss(penalty(grad))

    current = [scope.get_current_value(v) for v in variables]
    # Only the branch taken runs; the objective's side effects are dropped.
    return jax.lax.cond(active, jax.grad(loss_of), lambda values: zeros, current)


def apply_gradients(optimizer, grads, variables):
    """Pure: a LossScaleOptimizer's cond must not assign from inside."""
    scope = _step_scope
    state = optimizer.variables
    new_values, new_state = optimizer.stateless_apply(
        [scope.get_current_value(v) for v in state], grads,
        [scope.get_current_value(v) for v in variables])
    _assign(variables, new_values)
    _assign(state, new_state)


def forward_with_pullback(fn, variables):
    scope, others, call = _pure(fn, variables)
    output, vjp, updates = jax.vjp(call, [scope.get_current_value(v) for v in variables],
                                   has_aux=True)
    _assign(others, updates)
    return output, lambda cotangent: vjp(cotangent)[0]


def input_grad(fn, x):
    _, others, call = _pure(fn, [])

    def objective_of(x):
        (objective, aux), updates = call([], x)
        return objective, (aux, updates)

    (_, (aux, updates)), grad = jax.value_and_grad(objective_of, has_aux=True)(x)
    _assign(others, updates)
    return aux, grad


def no_grad():
    return contextlib.nullcontext()


def _pure(fn, variables):
    """`fn(*args)` (stateful style) as a pure function `call(values, *args)` of `variables`'
    values -> (output, updates of the other variables)."""
    scope = _step_scope
    if scope is None:
        raise RuntimeError("on JAX the GAN's train_step runs only inside fit() "
                           "(stateless_train_step)")
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
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)  # recorded by the outer scope


def input_gradients(model, loss_fn):
    """A compiled `(x, *targets) -> (per-sample losses, d sum(losses) / dx)` for `loss_fn(
    model(x), *targets)`, the model's weights held fixed (latent projection)."""
    import numpy as np

    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def total(x, targets):
        outputs, _ = model.stateless_call(trainable, fixed, x, training=False)
        losses = loss_fn(outputs, *targets)
        return losses.sum(), losses

    step = jax.jit(jax.value_and_grad(total, has_aux=True))

    def call(x, *targets):
        (_, losses), grad = step(x, targets)
        return np.asarray(losses), np.asarray(grad)

    return call
