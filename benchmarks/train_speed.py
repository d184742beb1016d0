"""Training speed of each preset on this machine: images/s of the full GAN step.

    python benchmarks/train_speed.py [--presets demo,dcgan64,seed128] [--steps 10]

Prints one table; every row is measured in the same run, so the ratios are fair.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dcgan.config import Config  # noqa: E402
from dcgan.models import count_macs  # noqa: E402
from dcgan.training import build_gan  # noqa: E402


def measure(preset: str, steps: int, batch_size: int | None) -> dict:
    config = Config.from_preset(preset)
    if batch_size:
        config = config.replace(batch_size=batch_size)
    keras.utils.set_random_seed(0)
    gan = build_gan(config)
    size, b = config.image_size, config.batch_size
    images = np.random.default_rng(0).uniform(-1, 1, (b, size, size, 3)).astype("float32")
    import tensorflow as tf

    data = tf.data.Dataset.from_tensors(images).repeat()
    gan.fit(data, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)  # compile / warm up
    start = time.perf_counter()
    gan.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    return {
        "preset": preset, "size": size, "batch": b,
        "G GMAC/img": count_macs(gan.generator) / 1e9,
        "D GMAC/img": count_macs(gan.discriminator) / 1e9,
        "ms/step": 1000 * seconds / steps, "img/s": steps * b / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="demo,dcgan64,seed128")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=None, help="override every preset's batch")
    args = parser.parse_args()
    rows = [measure(p, args.steps, args.batch_size) for p in args.presets.split(",")]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"keras {keras.__version__} ({keras.backend.backend()}), {args.steps} steps each")
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) and v < 10 else
                 f"{v:.0f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
