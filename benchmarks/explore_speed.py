"""How live the latent explorer and the web page feel: milliseconds per redraw of one face
(latent -> generator -> PNG bytes, what `nb.explore` and `python -m dcgan serve` do per slider
move), for each preset's full-size generator, untrained (the same arithmetic as a trained one).

    python benchmarks/explore_speed.py [--presets seed128,dcgan64] [--redraws 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from dcgan.config import Config  # noqa: E402
from dcgan.apps.explore import FaceExplorer  # noqa: E402
from dcgan.models.architectures import build_generator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="seed128,dcgan64")
    parser.add_argument("--redraws", type=int, default=30)
    args = parser.parse_args()
    print(f"# Keras {keras.__version__} on {keras.backend.backend()}, {os.cpu_count()} CPUs; "
          f"median of {args.redraws} redraws after 3 warm-up ones")
    print("| preset | image | latent | first face (load + directions + draw), ms | redraw, ms | slider move, ms |")
    print("|---|---|---|---|---|---|")
    folder = Path(tempfile.mkdtemp())
    for preset in args.presets.split(","):
        config = Config.from_preset(preset)
        path = folder / f"{preset}.keras"
        build_generator(config).save(path)
        explorer = FaceExplorer(path)
        start = time.perf_counter()
        explorer.face_png(0)
        first = 1000 * (time.perf_counter() - start)
        for seed in range(3):
            explorer.face_png(seed)

        def timed(**choices):
            times = []
            for seed in range(args.redraws):
                start = time.perf_counter()
                explorer.face_png(seed, **choices)
                times.append(1000 * (time.perf_counter() - start))
            return statistics.median(times)

        print(f"| {preset} | {config.image_size}x{config.image_size} | {config.latent_dim} | "
              f"{first:.0f} | {timed():.1f} | {timed(offsets=[0.5] * 8):.1f} |", flush=True)


if __name__ == "__main__":
    main()
