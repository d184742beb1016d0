"""What a checkpoint costs per preset: its size on disk and how long a save takes.

    python benchmarks/checkpoint_size.py [--presets demo,dcgan64,seed128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dcgan.training.checkpoint import build_optimizers, save_checkpoint  # noqa: E402
from dcgan.config import Config  # noqa: E402
from dcgan.outputs.sampling import latents_for  # noqa: E402
from dcgan.io import atomic_path  # noqa: E402
from dcgan.training.loop import build_gan  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="demo,dcgan64,seed128")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| preset | params G+D | checkpoint MiB | save s (ckpt) | generator.keras MiB | export s |")
    print("|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        config = Config.from_preset(preset)
        gan = build_gan(config)
        build_optimizers(gan)
        latents = latents_for(config.num_samples, config.latent_dim)
        with tempfile.TemporaryDirectory() as tmp:
            times = []
            for epoch in range(1, args.repeats + 1):
                start = time.perf_counter()
                path = save_checkpoint(Path(tmp) / "ckpt", gan, epoch, config, latents, keep=1)
                times.append(time.perf_counter() - start)
            start = time.perf_counter()
            with atomic_path(Path(tmp) / "generator.keras") as out:
                gan.generator.save(out)
            export = time.perf_counter() - start
            params = gan.generator.count_params() + gan.discriminator.count_params()
            print(f"| {preset} | {params:,} | {folder_size(path) / 2**20:.1f} | {min(times):.2f} | "
                  f"{(Path(tmp) / 'generator.keras').stat().st_size / 2**20:.1f} | {export:.2f} |")


if __name__ == "__main__":
    main()
