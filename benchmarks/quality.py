"""Quality on the demo faces for a fixed CPU budget, in SWD x1e3 (lower is better).

    python benchmarks/quality.py [--seconds 420] [--n 1024]
    python benchmarks/quality.py --backends tensorflow,jax,torch [--steps 1024]

Rows: the untrained generator, the trained generator (raw and EMA), the real-vs-real
floor; then the same budget on a 500-image subset without and with DiffAugment, scored
against held-out faces (what a small data set does to a GAN). Every row is measured in
this one run, on the same machine.  With --backends: the same seed and number of steps on
each Keras backend (each in its own process), so their samples can be compared.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from dcgan.config import Config  # noqa: E402
from dcgan.data import make_dataset  # noqa: E402
from dcgan.demo_faces import demo_faces  # noqa: E402
from dcgan.evaluate import fake_set  # noqa: E402
from dcgan.metrics import sliced_wasserstein  # noqa: E402
from dcgan.training import build_gan  # noqa: E402


class TimeLimit(keras.callbacks.Callback):
    def __init__(self, seconds):
        super().__init__()
        self.seconds, self.steps = seconds, 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def train_for(config: Config, seconds: float, steps: int = 0):
    """Train for `seconds` (or exactly `steps` steps, if given)."""
    keras.utils.set_random_seed(config.seed)
    dataset, count = make_dataset(config)
    gan = build_gan(config)
    untrained = gan.generator.get_weights()
    limit = TimeLimit(float("inf") if steps else seconds)
    per_epoch = max(1, count // config.batch_size)
    gan.fit(dataset, epochs=-(-steps // per_epoch) if steps else 10_000,
            steps_per_epoch=per_epoch, callbacks=[limit], verbose=0, shuffle=False)
    return gan, untrained, limit.steps


def backend_rows(args) -> None:
    """One row per backend: the same config, seed and number of steps, each backend in its own
    process; SWD of the EMA generator against the same held-out faces."""
    import json
    import subprocess
    import sys

    print(f"# demo preset, {args.steps} steps on each backend (same seed), {os.cpu_count()} CPUs; "
          f"SWD x1e3 (avg over levels) vs {args.n} held-out faces")
    print("| backend | steps | seconds | SWD x1e3, EMA | SWD x1e3, raw | / floor (EMA) |")
    print("|---|---|---|---|---|---|")
    for backend in args.backends.split(","):
        result = subprocess.run(
            [sys.executable, __file__, "--steps", str(args.steps), "--n", str(args.n), "--json"],
            env=dict(os.environ, KERAS_BACKEND=backend), capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"{backend}: {result.stderr[-2000:]}")
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"| {backend} | {row['steps']} | {row['seconds']:.0f} | {row['ema']:.2f} | "
              f"{row['raw']:.2f} | {row['ema'] / row['floor']:.2f} |", flush=True)


def one_backend_json(args) -> None:
    import json

    config = Config.from_preset("demo")
    real, floor = demo_faces(args.n, config.image_size, seed=101), demo_faces(args.n, config.image_size, seed=202)
    start = time.perf_counter()
    gan, _, steps = train_for(config, 0, steps=args.steps)
    seconds = time.perf_counter() - start
    swd = {k: sliced_wasserstein(real, images)["swd_x1e3_avg"] for k, images in (
        ("floor", floor), ("raw", fake_set(gan.generator, args.n)),
        ("ema", fake_set(gan.ema_generator, args.n)))}
    print(json.dumps({"backend": keras.backend.backend(), "steps": steps, "seconds": seconds, **swd}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=420, help="training budget per run")
    parser.add_argument("--n", type=int, default=1024, help="images per SWD set")
    parser.add_argument("--backends", default=None,
                        help="instead: the same number of --steps on each of these Keras backends")
    parser.add_argument("--steps", type=int, default=1024, help="with --backends: steps per backend")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backends:
        return backend_rows(args)
    if args.json:
        return one_backend_json(args)
    config = Config.from_preset("demo")
    size, n = config.image_size, args.n
    # Held-out real faces: seeds the training set (seed 0) never uses.
    real = demo_faces(n, size, seed=101)
    floor = demo_faces(n, size, seed=202)

    def swd(images):
        return sliced_wasserstein(real, images)["swd_x1e3_avg"]

    rows = [("real vs real (floor)", "-", swd(floor))]
    gan, untrained, steps = train_for(config, args.seconds)
    trained = gan.generator.get_weights()
    gan.generator.set_weights(untrained)
    rows.append(("untrained generator", "0", swd(fake_set(gan.generator, n))))
    gan.generator.set_weights(trained)
    rows.append((f"trained, raw ({config.demo_images} images)", str(steps), swd(fake_set(gan.generator, n))))
    rows.append((f"trained, EMA {config.ema_decay}", str(steps), swd(fake_set(gan.ema_generator, n))))
    for policy in ("", "color,translation,cutout"):
        small = config.replace(demo_images=500, diffaugment=policy)
        gan, _, steps = train_for(small, args.seconds)
        label = f"500 images, {'DiffAugment ' + policy if policy else 'no augmentation'}, EMA"
        rows.append((label, str(steps), swd(fake_set(gan.ema_generator, n))))
    print(f"# demo preset {size}x{size}, {args.seconds:.0f} s of training per run on "
          f"{os.cpu_count()} CPUs; SWD x1e3 (avg over levels) vs {n} held-out faces")
    print("| generator | steps | SWD x1e3 | / floor |")
    print("|---|---|---|---|")
    for name, steps, value in rows:
        print(f"| {name} | {steps} | {value:.2f} | {value / rows[0][2]:.2f} |")


if __name__ == "__main__":
    main()
