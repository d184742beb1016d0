"""Training speed and roofline per preset x precision x backend, beside a plain-PyTorch peer.

    python benchmarks/train_speed.py --presets dcgan64,seed128 --precisions auto,float32 \\
        --backends tensorflow,jax,torch --batch-size 64 [--jit auto] [--rounds 5 --steps 5] [--no-peer]

Each row: images/s of the full GAN step, the FLOP/s that makes (dcgan.models.train_step_flops:
the layers' MACs x 2 x the passes the step really does), its share of the device's dense peak
for the precision's compute dtype (dcgan.hardware.PEAK_TFLOPS; "-" on an unknown device, e.g.
a CPU), and the seconds a CelebA epoch (202,599 images) would take at that speed.

Every variant (backend x jit mode x option) runs in a process of its own (Keras picks its
backend once per process), is built and warmed up (compiled) first, and then all variants
take turns: round r runs `--steps` steps of each, in alternating order, so drifts of the
machine's speed hit every variant alike.  The table shows the median over rounds and the
ratio to the peer: pytorch/examples' DCGAN-64 networks and step (benchmarks/torch_peer.py),
which exists only for dcgan64.  Data is one fixed batch in memory: this is the step's speed,
not the input pipeline's (benchmarks/input_pipeline.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELEBA_IMAGES = 202_599


# ----------------------------------------------------------------------- worker side
def _keras_worker(spec: dict):
    import dcgan  # noqa: F401  (first: keeps TensorFlow's C++ start-up lines quiet)
    import keras
    import numpy as np

    from dcgan.config import Config
    from dcgan.hardware import local_accelerator
    from dcgan.models import train_step_flops
    from dcgan.precision import compute_dtype
    from dcgan.training import build_gan, resolved_settings

    config = Config.from_preset(spec["preset"], batch_size=spec["batch"], jit_compile=spec["jit"],
                                precision=spec["precision"], **spec.get("options", {}))
    keras.utils.set_random_seed(0)
    accelerator = local_accelerator()
    settings = resolved_settings(config, accelerator)
    gan = build_gan(config, settings)
    size = config.image_size
    images = np.random.default_rng(0).uniform(-1, 1, (spec["batch"], size, size, 3)).astype("float32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        data = tf.data.Dataset.from_tensors(images).repeat()
    else:
        class Same(keras.utils.PyDataset):
            num_batches = None

            def __getitem__(self, index):
                return images

        data = Same()
    dtype = compute_dtype(settings["precision"])
    spec["info"] = {"jit": settings["jit_compile"], "layout": settings["data_format"],
                    "precision": settings["precision"], "device": accelerator.name,
                    "peak": accelerator.peak_tflops(dtype), "size": config.image_size,
                    "flops": train_step_flops(gan.generator, gan.discriminator, config.reuse_fakes)}

    def run(steps):
        gan.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        # The step's outputs are read back: every backend has finished its work.
        keras.ops.convert_to_numpy(gan.g_optimizer.iterations.value)

    return run


def _peer_worker(spec: dict):
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from torch_peer import Peer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    real = np.random.default_rng(0).uniform(-1, 1, (spec["batch"], 3, 64, 64)).astype("float32")
    peer = Peer(real, device=device)
    spec["info"] = {"device": torch.cuda.get_device_name(0) if device == "cuda"
                    else f"CPU ({os.cpu_count()} cores)",
                    "precision": "float32", "layout": "channels_first", "size": 64}
    return peer.run


def worker(spec: dict) -> None:
    run = _peer_worker(spec) if spec["backend"] == "peer" else _keras_worker(spec)
    run(2)  # compile / warm up
    run(spec["steps"])
    print(json.dumps({"ready": True, **spec["info"]}), flush=True)
    for line in sys.stdin:
        steps = int(line)
        start = time.perf_counter()
        run(steps)
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


# ----------------------------------------------------------------------- parent side
def _start(spec: dict) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if spec["backend"] != "peer":
        env["KERAS_BACKEND"] = spec["backend"]
    return subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _read(process: subprocess.Popen, label: str) -> dict:
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"{label}: the worker stopped (see its error above)")
    return json.loads(line)


def _variants(args) -> list[dict]:
    options = [{}] + [json.loads(o) for o in args.options]
    variants = []
    for preset in args.presets.split(","):
        base = {"preset": preset, "batch": args.batch_size, "steps": args.steps}
        for precision in args.precisions.split(","):
            for backend in args.backends.split(","):
                for jit in args.jit.split(","):
                    for option in options:
                        label = (f"{preset}, {backend}, {precision}, jit {jit}"
                                 + "".join(f", {k}={v}" for k, v in option.items()))
                        variants.append({**base, "backend": backend, "jit": jit, "options": option,
                                         "precision": precision, "label": label})
        if args.peer and preset == "dcgan64":
            variants.append({**base, "backend": "peer",
                             "label": "dcgan64, plain PyTorch (pytorch/examples)"})
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--presets", "--preset", default="dcgan64", help="comma-separated presets")
    parser.add_argument("--precisions", default="auto",
                        help="comma-separated: auto, float32, mixed_float16, mixed_bfloat16")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--jit", default="auto", help="comma-separated jit_compile modes")
    parser.add_argument("--option", dest="options", action="append", default=[],
                        help='an extra variant per backend, as JSON Config fields, '
                             'e.g. \'{"reuse_fakes": true}\' (repeatable)')
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--no-peer", dest="peer", action="store_false")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))

    variants = _variants(args)
    workers = []
    for spec in variants:  # built and compiled one after another: no contention
        process = _start(spec)
        spec["info"] = _read(process, spec["label"])
        workers.append(process)
    seconds = {i: [] for i in range(len(variants))}
    for r in range(args.rounds):
        order = range(len(variants)) if r % 2 == 0 else reversed(range(len(variants)))
        for i in order:
            workers[i].stdin.write(f"{args.steps}\n")
            workers[i].stdin.flush()
            seconds[i].append(_read(workers[i], variants[i]["label"])["seconds"])
    for process in workers:
        process.stdin.close()
        process.wait()

    from importlib.metadata import version

    speeds = {i: args.steps * args.batch_size / statistics.median(s) for i, s in seconds.items()}
    peer = next((speeds[i] for i, v in enumerate(variants) if v["backend"] == "peer"), None)
    devices = sorted({v["info"]["device"] for v in variants})
    print(f"# {', '.join(devices)}; {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"CPUs; keras {version('keras')}; batch {args.batch_size}; median of {args.rounds} "
          f"alternating rounds of {args.steps} steps")
    print("| variant | precision | compiled | layout | ms/step | img/s | TFLOP/s | % of peak "
          "| CelebA epoch (s) | x peer | spread (img/s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, spec in enumerate(variants):
        info = spec["info"]
        rates = [args.steps * args.batch_size / s for s in seconds[i]]
        ratio = f"{speeds[i] / peer:.2f}" if peer and spec["preset"] == "dcgan64" else "-"
        compiled = {True: "yes", False: "no", None: "-"}[info.get("jit")]
        tflops = speeds[i] * info["flops"] / 1e12 if info.get("flops") else None
        share = f"{100 * tflops / info['peak']:.1f}" if tflops and info.get("peak") else "-"
        print(f"| {spec['label']} | {info['precision']} | {compiled} | {info['layout']} | "
              f"{1000 * args.batch_size / speeds[i]:.0f} | {speeds[i]:.1f} | "
              f"{f'{tflops:.3f}' if tflops else '-'} | {share} | "
              f"{CELEBA_IMAGES / speeds[i]:.0f} ({info['size']}px) | {ratio} | "
              f"{min(rates):.1f}-{max(rates):.1f} |")


if __name__ == "__main__":
    main()
