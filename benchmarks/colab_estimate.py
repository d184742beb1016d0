"""Estimate a run's pace on GPUs not at hand from one measured on another: the same share of
each device's dense peak (dcgan.hardware.PEAK_TFLOPS), in the precision `auto` picks there.

An estimate, not a measurement: a small GPU may reach a larger or smaller share of its peak
than a large one.  It prints the plan line each device would print (dcgan.training.clock.plan_text),
so docs/colab.md's T4 figures come from here:

    python benchmarks/colab_estimate.py --measured 4429 --on "NVIDIA H200" --precision mixed_bfloat16

(4,429 img/s: seed128 on an H200 with JAX in bfloat16, docs/speed.md).  On a Colab GPU, the
number to trust is the plan line the notebook's training cell prints after its first steps.
"""

from __future__ import annotations

import argparse
import sys

from dcgan.training.clock import Clock, plan_text
from dcgan.hardware import Accelerator
from dcgan.settings import precision as auto_precision

# Colab's GPUs, with the compute capability that decides `auto`'s precision
COLAB_GPUS = (("Tesla T4", (7, 5)), ("NVIDIA L4", (8, 9)), ("NVIDIA A100-SXM4-40GB", (8, 0)))
CELEBA_IMAGES = 202_599  # split "all"
DTYPE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16", "float32": "float32"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=float, required=True, help="img/s measured on --on")
    parser.add_argument("--on", required=True, help='the device measured, e.g. "NVIDIA H200"')
    parser.add_argument("--precision", default="mixed_bfloat16", choices=sorted(DTYPE))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--minutes", type=float, default=90, help="the notebook's MINUTES")
    parser.add_argument("--images", type=int, default=CELEBA_IMAGES, help="images per epoch")
    args = parser.parse_args(argv)
    measured_peak = Accelerator("gpu", args.on).peak_tflops(DTYPE[args.precision])
    if not measured_peak:
        print(f"error: no dense peak known for {args.on!r} in {args.precision} "
              "(dcgan.hardware.PEAK_TFLOPS)", file=sys.stderr)
        return 2
    share = args.measured / measured_peak  # img/s per peak TFLOP/s
    steps = args.images // args.batch_size
    print(f"from {args.measured:,.0f} img/s on {args.on} ({args.precision}, dense peak "
          f"{measured_peak:g} TFLOP/s); estimates at the same share of each peak:\n")
    print("| device | precision (auto) | est. img/s | plan line (estimated) |")
    print("|---|---|---|---|")
    for name, capability in COLAB_GPUS:
        device = Accelerator("gpu", name, capability)
        chosen = auto_precision("auto", device)
        rate = share * device.peak_tflops(DTYPE[chosen])
        clock = Clock(steps, args.batch_size, started=0.0)
        clock.elapsed = lambda: 0.0  # the plan as the first steps see it (compile time aside)
        line = plan_text(clock, rate / args.batch_size, name, chosen, args.epochs, args.minutes)
        print(f"| {name} | {chosen} | {rate:,.0f} | {line} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
