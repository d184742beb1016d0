"""One module per Keras backend: all the code that must differ between them.

`dcgan.backend` imports the running backend's module once (as Keras picks its own
trainer in `keras/src/backend/__init__.py`), and the rest of the package is written once,
in `keras.ops`.  Each module provides the same names:

- `gradient_step(loss_fn, variables, optimizer, extra_gradients)`: minimise one loss;
- `penalty_gradients(objective, inputs, penalty, variables, optimizer, active)`: a gradient
  penalty's second-order gradients (R1);
- `apply_gradients(optimizer, grads, variables)`;
- `forward_with_pullback(fn, variables)`, `input_grad(fn, x)`: one generator forward for both
  steps (reuse_fakes);
- `no_grad()`: bookkeeping that autograd must not record;
- `replicas()`, `replica_mean(value)`, `step_logs(logs)`: what tf.distribute needs;
- `sync_state(model)` (JAX only; a no-op elsewhere): the trainer's state back into the
  model's variables, for a checkpoint or grid inside an epoch;
- `stateless_train_step(model, step, state, data)`: the train_step as the backend's trainer
  calls it (JAX: a pure function of the state);
- `feed(reader, shape)`: the endless batch stream `fit()` reads (tf.data on TensorFlow, a
  keras PyDataset elsewhere);
- `decode_all`: a faster image decoder than Pillow's, or None (dcgan.data.decode).

Backend-specific code elsewhere, by nature: dcgan/distribute.py (devices and clusters),
dcgan/hardware.py and dcgan/env.py (what the machine has), dcgan/checkpoint.py (reading the
old TensorFlow checkpoint format).
"""


def add_gradients(grads, extra):
    """`grads` + `extra` (None: nothing to add); a None gradient takes the extra one."""
    if extra is None:
        return grads
    return [e if g is None else g + e for g, e in zip(grads, extra, strict=True)]


def one_replica() -> tuple[int, int]:
    """(replicas, this one's index) where a step runs as one program: JAX's DataParallel runs
    one over the global batch; Keras on PyTorch trains on one device."""
    return 1, 0


def unchanged(value):
    """replica_mean and step_logs where there is one replica."""
    return value
