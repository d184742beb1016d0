"""Training: the GAN and its step, devices, callbacks, the clock, checkpoints, the loop."""
