"""TensorFlow: gradient tapes, tf.distribute replicas, tf.data feeding, TF's image decoders."""

from __future__ import annotations

import contextlib

import tensorflow as tf  # this module is only imported when Keras runs on TensorFlow

from dcgan.backends import add_gradients


def gradient_step(loss_fn, variables, optimizer, extra_gradients=None):
    with tf.GradientTape() as tape:
        loss, aux = loss_fn()
        scaled = optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, variables)
    apply_gradients(optimizer, add_gradients(grads, extra_gradients), variables)
    return loss, aux


def penalty_gradients(objective, inputs, penalty, variables, optimizer, active):
    zeros = [tf.zeros(v.shape, v.dtype) for v in variables]

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


def apply_gradients(optimizer, grads, variables):
    optimizer.apply(grads, variables)


def forward_with_pullback(fn, variables):
    tape = tf.GradientTape()
    with tape:
        output = fn()
    return output, lambda cotangent: tape.gradient(output, variables, output_gradients=cotangent)


def input_grad(fn, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        objective, aux = fn(x)
    return aux, tape.gradient(objective, x)


def no_grad():
    return contextlib.nullcontext()


def replicas() -> tuple[int, int]:
    count = tf.distribute.get_strategy().num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    return count, (context.replica_id_in_sync_group if context is not None and count > 1 else 0)


def replica_mean(value):
    if replicas()[0] == 1:
        return value
    return tf.distribute.get_replica_context().all_reduce("mean", value)


def step_logs(logs: dict) -> dict:
    """Across workers (MultiWorkerMirroredStrategy) Keras averages each log over axis 0, which
    a scalar lacks: there each is a 1-vector, and Keras' mean makes it a scalar again."""
    strategy = tf.distribute.get_strategy()
    # The test Keras' own reduce_per_replica makes.
    if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()):
        return {k: tf.reshape(v, (1,)) for k, v in logs.items()}
    return logs


def stateless_train_step(model, step, state, data):
    raise NotImplementedError("Keras' TensorFlow trainer calls train_step(data)")


# ------------------------------------------------------------------ input
def feed(reader, shape):
    """`reader(0), reader(1), ...` (float32 batches of `shape`) as a tf.data pipeline: read in
    parallel and prefetched, and split over tf.distribute workers by Keras."""
    def read(b):
        batch = tf.numpy_function(reader, [b], tf.float32, stateful=False)
        batch.set_shape(shape)
        return batch

    return (tf.data.Dataset.range(2**62)
            .map(read, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def decode_all(source, size: int, crop: int):
    """Yield (entry index, uint8 image, original short side) for every entry TensorFlow
    decodes (`decode_and_crop_jpeg` for JPEGs: only the crop window is decoded); entries it
    cannot decode are left out (dcgan.data.decode gives them to Pillow)."""
    indices = tf.data.Dataset.range(len(source.entries))
    if not source.reads_files:  # archive members, parquet rows
        def entry_bytes():
            for i, entry in enumerate(source.entries):
                try:
                    yield i, source.read(entry)
                except Exception:  # unreadable member: Pillow's pass names it
                    yield i, b""
        data = tf.data.Dataset.from_generator(
            entry_bytes, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.string)))
    else:
        paths = tf.constant(source.entries)
        data = indices.map(lambda i: (i, tf.io.read_file(paths[i])),
                           num_parallel_calls=tf.data.AUTOTUNE)
    decoded = (data.map(lambda i, b: (i, *decode_one(b, size, crop)),
                        num_parallel_calls=tf.data.AUTOTUNE)
               .ignore_errors()
               .prefetch(64))
    for index, image, side in decoded.as_numpy_iterator():
        yield int(index), image, int(side)


def _crop_window(height, width, crop):
    """A centred square: `crop` px (or the short side, if crop is 0 or larger)."""
    side = tf.minimum(height, width)
    if crop > 0:
        side = tf.minimum(side, crop)
    return (height - side) // 2, (width - side) // 2, side


def decode_one(data, size: int, crop: int):
    """Encoded bytes -> (uint8 (size, size, 3), the original short side): centre crop, then an
    antialiased resize (dcgan.data.decode.decode_one_with_pillow does the same with Pillow)."""
    def jpeg():
        shape = tf.io.extract_jpeg_shape(data)
        top, left, side = _crop_window(shape[0], shape[1], crop)
        image = tf.io.decode_and_crop_jpeg(data, tf.stack([top, left, side, side]), channels=3)
        return image, tf.minimum(shape[0], shape[1])

    def other():
        image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
        shape = tf.shape(image)
        top, left, side = _crop_window(shape[0], shape[1], crop)
        return image[top:top + side, left:left + side], tf.minimum(shape[0], shape[1])

    image, short_side = tf.cond(tf.io.is_jpeg(data), jpeg, other)
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), short_side


def input_gradients(model, loss_fn):
    """A compiled `(x, *targets) -> (per-sample losses, d sum(losses) / dx)` for `loss_fn(
    model(x), *targets)`, the model's weights held fixed (latent projection)."""
    @tf.function(reduce_retracing=True)
    def call(x, *targets):
        with tf.GradientTape() as tape:
            tape.watch(x)
            losses = loss_fn(model(x, training=False), *targets)
            total = tf.reduce_sum(losses)  # inside the tape: it must record the sum too
        return losses, tape.gradient(total, x)

    return lambda x, *targets: tuple(t.numpy() for t in call(tf.constant(x), *targets))
