"""PyTorch: autograd (backward, then the optimizer's update without recording it)."""

from __future__ import annotations

import keras
import torch  # this module is only imported when Keras runs on PyTorch

from dcgan.backends import add_gradients, one_replica, pydataset, unchanged

replicas = one_replica
replica_mean = step_logs = unchanged
feed = pydataset.feed  # Keras feeds PyTorch from a PyDataset

decode_all = None  # Pillow's decoder (dcgan.data.decode): torch has none faster for these files


def gradient_step(loss_fn, variables, optimizer, extra_gradients=None):
    for variable in variables:  # the other network's gradients are never read
        variable.value.grad = None
    loss, aux = loss_fn()
    optimizer.scale_loss(loss).backward()
    grads = [v.value.grad for v in variables]
    apply_gradients(optimizer, add_gradients(grads, extra_gradients), variables)
    return loss, aux


def penalty_gradients(objective, inputs, penalty, variables, optimizer, active):
    zeros = [keras.ops.zeros(v.shape, v.dtype) for v in variables]
    if not bool(active):  # eager: the branch not taken costs nothing
        return zeros
    leaf = inputs.detach().requires_grad_(True)
    grad = torch.autograd.grad(objective(leaf), leaf, create_graph=True)[0]
    loss = optimizer.scale_loss(penalty(grad))
    grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    return [z if g is None else g for g, z in zip(grads, zeros)]


def apply_gradients(optimizer, grads, variables):
    with torch.no_grad():
        optimizer.apply(grads, variables)


def forward_with_pullback(fn, variables):
    output = fn()
    return output, lambda cotangent: list(torch.autograd.grad(
        output, [v.value for v in variables], cotangent))


def input_grad(fn, x):
    leaf = x.detach().requires_grad_(True)
    objective, aux = fn(leaf)
    return aux, torch.autograd.grad(objective, leaf)[0]


def no_grad():
    return torch.no_grad()


def stateless_train_step(model, step, state, data):
    raise NotImplementedError("Keras' PyTorch trainer calls train_step(data)")


def input_gradients(model, loss_fn):
    """`(x, *targets) -> (per-sample losses, d sum(losses) / dx)` for `loss_fn(model(x),
    *targets)`, the model's weights held fixed (latent projection)."""
    from keras import ops

    def call(x, *targets):
        leaf = ops.convert_to_tensor(x).detach().requires_grad_(True)
        targets = [ops.convert_to_tensor(t) for t in targets]  # on the model's device
        losses = loss_fn(model(leaf, training=False), *targets)
        (grad,) = torch.autograd.grad(losses.sum(), [leaf])
        return losses.detach().cpu().numpy(), grad.cpu().numpy()

    return call
