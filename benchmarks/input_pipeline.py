"""Input pipeline vs training speed, and host memory, on this machine.

    python benchmarks/input_pipeline.py [--preset seed128] [--images 2000,8000] [--data PATH]

For each data-set size it runs, in a fresh process: the first epoch (JPEG
decode + crop + resize + cache write), a later epoch read from the cache, and
reports peak RSS. It then measures the training step of the same preset and
prints the ratio input / training. Without --data it writes CelebA-shaped
JPEGs (178x218, faces drawn by dcgan.data.demo_faces) to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_celeba_like(folder: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    from dcgan.data.demo_faces import demo_faces

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    done = len(list(folder.glob("*.jpg")))
    for start in range(done, count, 256):
        faces = demo_faces(min(256, count - start), 128, seed=start)
        for i, face in enumerate(faces):
            image = Image.fromarray(face).resize((178, 218), Image.BILINEAR)
            noisy = np.asarray(image, np.int16) + rng.integers(-12, 13, (218, 178, 3))
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
                folder / f"{start + i:06d}.jpg", quality=90)


def child(args) -> None:
    """Runs in a fresh process: build the cache (epoch 1), then read one epoch from it, as
    training reads it on the current Keras backend (tf.data on TensorFlow, else a PyDataset)."""
    import keras

    from dcgan.data.cache import open_cache
    from dcgan.data.pipeline import batches as make_batches
    from dcgan.settings import crop as resolve_crop
    from dcgan.data.sources import open_source

    keras.ops.zeros(1)  # load the backend before measuring
    source = open_source(args.data)
    source.entries = source.entries[:args.count]
    crop = resolve_crop(_config(args), source.is_celeba or args.celeba_crop)
    start = time.perf_counter()
    cache = open_cache(source, args.size, crop, args.cache, progress=False)
    first = time.perf_counter() - start
    batch = min(args.batch, cache.count)
    dataset, steps = make_batches(cache, batch, seed=0), cache.count // batch
    start = time.perf_counter()
    if hasattr(dataset, "take"):  # tf.data
        for _ in dataset.take(steps):
            pass
    else:  # keras.utils.PyDataset
        for b in range(steps):
            dataset[b]
    later = time.perf_counter() - start
    print(json.dumps({"count": cache.count, "first": cache.count / first,
                      "cached": steps * batch / later,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "cache_mb": cache.path.stat().st_size / 2**20}))


def _config(args):
    from dcgan.config import Config

    return Config.from_preset(args.preset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed128")
    parser.add_argument("--images", default="2000,8000", help="data-set sizes to compare")
    parser.add_argument("--data", default=None, help="a folder of images (default: synthetic CelebA)")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--celeba-crop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    config = _config(args)
    sizes = [int(n) for n in args.images.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = str(Path(tmp) / "celeba_like")
            make_celeba_like(Path(data), max(sizes))
        rows = []
        for count in sizes:
            command = [sys.executable, __file__, "--child", "--data", data, "--count", str(count),
                       "--size", str(config.image_size), "--batch", str(config.batch_size),
                       "--cache", str(Path(tmp) / f"cache{count}"), "--preset", args.preset]
            if args.data is None:
                command.append("--celeba-crop")
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))

    sys.path.insert(0, str(Path(__file__).parent))
    from train_speed import measure

    train = measure(args.preset, args.train_steps, None)["img/s"]
    print(f"# preset {args.preset}: {config.image_size}x{config.image_size}, batch "
          f"{config.batch_size}; {os.cpu_count()} CPUs; source "
          f"{args.data or 'synthetic CelebA-shaped JPEGs (178x218)'}")
    print("| images | cache MiB | input img/s, epoch 1 (JPEG) | input img/s, cached | "
          "train img/s | cached / train | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['count']} | {row['cache_mb']:.0f} | {row['first']:.0f} | {row['cached']:.0f} | "
              f"{train:.1f} | {row['cached'] / train:.0f}x | {row['rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
