"""The DCGAN as a `keras.Model` with a custom `train_step`.

Label convention (this project's, after Chollet's DCGAN examples): the
discriminator outputs a logit for "this image is fake", so **real = 0 and
fake = 1**.  The discriminator's targets get a little uniform noise that
pulls them towards each other (real in [0, a], fake in [1 - a, 1]); keeping
them inside [0, 1] keeps binary cross-entropy bounded below.  The generator
is trained to make the discriminator say "real" (target 0, no noise).
"""

from __future__ import annotations

import keras
from keras import ops

from dcgan import backend
from dcgan.models.augment import diff_augment, parse_policy
from dcgan.config import LABEL_MODES, LOSSES


class DCGAN(keras.Model):
    """A generator and a discriminator trained against each other by `fit()`.

    Args:
        generator: maps latents of shape (batch, latent_dim) to images in [-1, 1].
        discriminator: maps images to one logit each (high = fake).
        label_mode: "noise" (uniform noise on both sides' targets) or
            "one_sided" (real targets smoothed to `label_smoothing`, fake exactly 1).
        label_noise: largest noise added to a discriminator target in "noise" mode.
        label_smoothing: the real target in "one_sided" mode.
        seed: seeds the model's own random stream (latents, label noise).
        diffaugment: DiffAugment policy applied before every discriminator call,
            e.g. "color,translation,cutout" ("" = off).
        ema_decay: keep an exponential moving average of the generator's weights
            (`ema_generator`, used for samples by default); 0 turns it off.
        reuse_fakes: the G step reuses the D step's generated images (one generator
            forward per step, as pytorch/examples' DCGAN) instead of fresh latents.
        loss: "bce" (cross-entropy on the targets above) or "hinge" (D: real logits
            below -1, fake above +1; G: lower logits on its images; no label noise).
        r1_gamma: weight of the R1 penalty (Mescheder et al. 2018), gamma/2 times the
            squared gradient of D's output with respect to real images (0 = off);
            `r1_interval`: it is computed every this many steps, weighted by it (lazy).
        ada_target: adaptive augmentation (Karras et al. 2020): each DiffAugment transform
            is applied to an image with probability `ada_p`, which rises by
            batch / (ada_kimg * 1000) per step while D calls more than this fraction of the
            real images real (the mean sign of its outputs on them) and falls otherwise;
            0 = DiffAugment on every image, as without it.
    """

    def __init__(self, generator, discriminator, label_mode="noise", label_noise=0.05,
                 label_smoothing=0.1, seed=None, ema_decay=0.0, diffaugment="", reuse_fakes=False,
                 loss="bce", r1_gamma=0.0, r1_interval=16, ada_target=0.0, ada_kimg=20.0,
                 **kwargs):
        super().__init__(**kwargs)
        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode={label_mode!r}: must be one of {', '.join(LABEL_MODES)}")
        if loss not in LOSSES:
            raise ValueError(f"loss={loss!r}: must be one of {', '.join(LOSSES)}")
        self.loss_kind = loss
        self.generator = generator
        self.discriminator = discriminator
        self.label_mode = label_mode
        self.label_noise = float(label_noise)
        self.label_smoothing = float(label_smoothing)
        self.seed = seed
        self.latent_dim = int(generator.input_shape[-1])
        self.diffaugment = diffaugment
        self.reuse_fakes = bool(reuse_fakes)
        self.augment_policy = parse_policy(diffaugment)
        self.ema_decay = float(ema_decay)
        self.r1_gamma, self.r1_interval = float(r1_gamma), int(r1_interval)
        self.ada_target, self.ada_kimg = float(ada_target), float(ada_kimg)
        if self.ada_target > 0 and not self.augment_policy:
            raise ValueError("ada_target needs a DiffAugment policy to adapt (diffaugment=...)")
        # Every replica computes the same p (from all-reduced outputs): one copy is kept.
        self.ada_p = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="ada_p", aggregation="only_first_replica")
        self.ema_generator = None
        if self.ema_decay > 0:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.name = "generator_ema"
            self.ema_generator.set_weights(generator.get_weights())
        self.seed_generator = keras.random.SeedGenerator(seed, name="gan_seed")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        # Both networks are already built, so this wrapper is too (saving needs no dummy call).
        self.built = True

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        """Set the discriminator's and the generator's optimizers (one each).

        Both are built here, and their variables are part of the GAN's
        `non_trainable_variables` (see there).  Keras' own `optimizer` is an
        SGD without state that is never applied: its JAX trainer wants one.
        """
        kwargs.setdefault("optimizer", keras.optimizers.SGD(0.0, name="unused_optimizer"))
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        if self.loss_kind == "hinge":
            # Keras' Hinge takes 0/1 labels as -1/+1: max(0, 1 + real), max(0, 1 - fake).
            self.d_loss_object, self.g_loss_object = keras.losses.Hinge(), _MeanLogit(name="mean_logit")
        else:
            bce = keras.losses.BinaryCrossentropy(from_logits=True)
            self.d_loss_object = self.g_loss_object = bce

    @property
    def optimizer_variables(self):
        """Both optimizers' variables (moments, iteration counts, loss scale), D's first."""
        if getattr(self, "d_optimizer", None) is None:
            return []
        return list(self.d_optimizer.variables) + list(self.g_optimizer.variables)

    @property
    def non_trainable_variables(self):
        # Keras' JAX trainer threads `self.optimizer`'s variables and the model's own
        # state through its stateless step; listing both optimizers' variables here is
        # what keeps their moments and step counts from one step to the next.
        return super().non_trainable_variables + self.optimizer_variables

    @property
    def metrics(self):
        # Listed here so Keras resets them at the start of every epoch.
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def call(self, latents, training=False):
        return self.generator(latents, training=training)

    # --------------------------------------------------------------- targets
    def discriminator_targets(self, batch_size):
        """Return (real_targets, fake_targets), each of shape (batch_size, 1)."""
        shape = (batch_size, 1)
        if self.label_mode == "one_sided":
            # Salimans et al. 2016: smooth only the real side.
            return ops.full(shape, self.label_smoothing), ops.ones(shape)
        def noise(shape):
            return keras.random.uniform(shape, 0.0, self.label_noise, seed=self.seed_generator)

        real_noise = backend.replica_share(noise, batch_size, 1)
        fake_noise = backend.replica_share(noise, batch_size, 1)
        return real_noise, 1.0 - fake_noise

    def generator_targets(self, batch_size):
        """What the generator wants the discriminator to say of its images: real (0)."""
        return ops.zeros((batch_size, 1))

    def sample_latents(self, batch_size):
        return backend.replica_share(
            lambda shape: keras.random.normal(shape, seed=self.seed_generator),
            batch_size, self.latent_dim)

    # ------------------------------------------------------------ training
    def train_step(self, *args):
        """One D step and one G step. Keras calls it as `train_step(data)`, or on JAX
        as `train_step(state, data)` (then it returns (logs, new_state))."""
        if len(args) == 2:
            return backend.stateless_train_step(self, self._train_step, *args)
        return self._train_step(args[0])

    def _train_step(self, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        batch_size = ops.shape(real)[0]
        d_loss, real_logits, fake_logits, fakes = self.d_step(real, batch_size)
        g_loss = self.g_step(batch_size, fakes)
        with backend.no_grad():
            if self.ada_target > 0:
                self._update_ada_p(real_logits, batch_size)
            if self.ema_generator is not None:
                self._update_ema()
            self.d_loss_tracker.update_state(backend.global_loss(d_loss))
            self.g_loss_tracker.update_state(backend.global_loss(g_loss))
            self.d_real_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
            self.d_fake_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        logs = {m.name: m.result() for m in self.metrics}
        if self.ada_target > 0:
            logs["ada_p"] = ops.convert_to_tensor(self.ada_p.value)
        return backend.step_logs(logs)

    def d_step(self, real, batch_size):
        """The discriminator's step: real images towards 0, generated ones towards 1 (with the
        label noise, lazy R1 and augmentation configured).  Returns (loss, real logits, fake
        logits, the fakes and their pullback for a G step that reuses them)."""
        latents = self.sample_latents(batch_size)
        if self.reuse_fakes:  # one generator forward serves both steps
            fake, g_pullback = backend.forward_with_pullback(
                lambda: self.generator(latents, training=True), self.generator.trainable_variables)
        else:
            g_pullback = None
            with backend.no_grad():
                fake = self.generator(latents, training=True)
        if self.loss_kind == "hinge":
            real_targets, fake_targets = ops.zeros((batch_size, 1)), ops.ones((batch_size, 1))
        else:
            real_targets, fake_targets = self.discriminator_targets(batch_size)
        real_seen = self._augment(real)  # what D sees of the real images (and R1 is taken at)

        def d_loss_fn():
            # Separate calls keep real and fake BatchNorm statistics apart (as Radford et al.).
            real_logits = self.discriminator(real_seen, training=True)
            fake_logits = self.discriminator(self._augment(ops.stop_gradient(fake)), training=True)
            loss = (self.d_loss_object(real_targets, real_logits)
                    + self.d_loss_object(fake_targets, fake_logits))
            return loss, (real_logits, fake_logits)

        d_variables = self.discriminator.trainable_variables
        d_loss, (real_logits, fake_logits) = backend.gradient_step(
            d_loss_fn, d_variables, self.d_optimizer, self._r1_gradients(real_seen, d_variables))
        return d_loss, real_logits, fake_logits, (fake, g_pullback)

    def g_step(self, batch_size, fakes):
        """The generator's step: make the (updated) discriminator say "real" (0), on the D
        step's fakes (`reuse_fakes`, as pytorch/examples) or on fresh latents.  Returns its loss."""
        g_targets = self.generator_targets(batch_size)
        g_variables = self.generator.trainable_variables

        def g_loss_of(generated):
            logits = self.discriminator(self._augment(generated), training=True)
            return self.g_loss_object(g_targets, logits)

        if self.reuse_fakes:
            fake, g_pullback = fakes

            def scaled_g_loss(generated):
                loss = g_loss_of(generated)
                return self.g_optimizer.scale_loss(loss), loss

            # The pullback of the scaled loss's gradient is the scaled gradient the
            # optimizer unscales (with loss scaling; otherwise scale_loss is the identity).
            g_loss, grad_fake = backend.input_grad(scaled_g_loss, fake)
            backend.apply_gradients(self.g_optimizer, g_pullback(grad_fake), g_variables)
            return g_loss
        fresh = self.sample_latents(batch_size)
        g_loss, _ = backend.gradient_step(
            lambda: (g_loss_of(self.generator(fresh, training=True)), ()), g_variables,
            self.g_optimizer)
        return g_loss

    def _augment(self, images):
        if not self.augment_policy:
            return images
        strength = self.ada_p if self.ada_target > 0 else None
        return diff_augment(images, self.augment_policy, self.seed_generator, strength)

    def _r1_gradients(self, real, variables):
        """The lazy R1 penalty's gradients for D's variables (None when it is off), at the
        real images as D sees them (augmented, with the D step's own draws)."""
        if self.r1_gamma <= 0:
            return None
        replicas, _ = backend.replicas()
        # gamma/2 E|grad|^2, times the interval it stands for; divided by the replicas as
        # Keras' losses are, so that their summed gradients are one device's.
        weight = 0.5 * self.r1_gamma * self.r1_interval / replicas

        def objective(images):
            logits = self.discriminator(images, training=True)
            return ops.sum(ops.cast(logits, "float32"))

        def penalty(grad):
            return weight * ops.mean(ops.sum(ops.square(grad), axis=(1, 2, 3)))

        active = ops.equal(ops.mod(self.d_optimizer.iterations, self.r1_interval), 0)
        return backend.penalty_gradients(objective, real, penalty, variables, self.d_optimizer,
                                         active)

    def _update_ada_p(self, real_logits, batch_size):
        # High logit = fake here, so D calls a real image real where its logit is negative.
        said_real = backend.replica_mean(ops.mean(ops.sign(-ops.cast(real_logits, "float32"))))
        replicas, _ = backend.replicas()
        step = ops.cast(batch_size * replicas, "float32") / (self.ada_kimg * 1000.0)
        direction = ops.sign(said_real - self.ada_target)
        self.ada_p.assign(ops.clip(self.ada_p + direction * step, 0.0, 1.0))

    def _update_ema(self):
        # Warm-up as tf.train.ExponentialMovingAverage(num_updates): early on the average
        # follows the generator closely instead of staying near its random start.
        step = ops.cast(self.g_optimizer.iterations, "float32")
        decay = ops.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for average, weight in zip(self.ema_generator.trainable_weights, self.generator.trainable_weights):
            average.assign(decay * average + (1.0 - decay) * ops.cast(weight, average.dtype))
        # BatchNorm's running statistics are copied, not averaged (StyleGAN2-ADA copies its
        # buffers): they must describe the activations the averaged weights produce now.
        for copy, statistic in zip(self.ema_generator.non_trainable_weights,
                                   self.generator.non_trainable_weights):
            copy.assign(ops.cast(statistic, copy.dtype))

    @property
    def sampling_generator(self):
        """The generator to draw samples with: the EMA one when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator


class _MeanLogit(keras.losses.Loss):
    """The hinge generator loss in this project's convention (high logit = fake): the mean
    logit D gives the generated images.  A Keras Loss, so tf.distribute scales it as it
    scales the others."""

    def call(self, y_true, y_pred):
        return ops.mean(y_pred, axis=-1)
