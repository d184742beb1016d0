"""Training speed and roofline per preset x precision x backend, beside a plain-PyTorch peer.

    python benchmarks/train_speed.py --presets dcgan64,seed128 --precisions auto,float32 \\
        --backends tensorflow,jax,torch --batch-size 64 [--jit auto] [--rounds 5 --steps 5] [--no-peer]
    python benchmarks/train_speed.py --presets seed128 --backends jax --devices 1,2,4,8 --batch-size 64 --batch-per-device

With --devices, the batch is the global one (split over the devices) and "scaling" is the
per-device throughput against one device's (100 % = linear); --simulate-cpu-devices N splits
a CPU into N devices to check the wiring (not the speed).

Each row: images/s of the full GAN step, the FLOP/s that makes (dcgan.models.architectures.train_step_flops:
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
import itertools
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
    from dcgan.distribute import use_devices
    from dcgan.hardware import local_accelerator
    from dcgan.models.architectures import train_step_flops
    from dcgan.models.precision import compute_dtype
    from dcgan.settings import resolve
    from dcgan.training.loop import build_gan

    if spec.get("simulate") and keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # logical CPU devices, before TensorFlow's runtime starts

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * spec["simulate"])
    config = Config.from_preset(spec["preset"], batch_size=spec["batch"], jit_compile=spec["jit"],
                                precision=spec["precision"], devices=spec["devices"],
                                **spec.get("options", {}))
    keras.utils.set_random_seed(0)
    accelerator = local_accelerator()
    settings = resolve(config, accelerator)
    with use_devices(settings.devices):
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
    dtype = compute_dtype(settings.precision)
    spec["info"] = {"jit": settings.jit_compile, "layout": settings.data_format,
                    "devices": settings.devices,
                    "precision": settings.precision, "device": accelerator.name,
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
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    if spec.get("simulate"):  # JAX: simulated CPU devices, set before it is imported
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={spec['simulate']}"
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
                for jit, option, devices in itertools.product(
                        args.jit.split(","), options, args.devices.split(",")):
                    label = (f"{preset}, {backend}, {precision}, jit {jit}"
                             + (f", {devices} devices" if args.devices != "auto" else "")
                             + "".join(f", {k}={v}" for k, v in option.items()))
                    batch = args.batch_size * (int(devices) if args.batch_per_device
                                               and devices != "auto" else 1)
                    variants.append({**base, "batch": batch, "backend": backend, "jit": jit,
                                     "options": option,
                                     "precision": precision, "devices": devices,
                                     "simulate": args.simulate_cpu_devices, "label": label})
        if args.peer and preset == "dcgan64":
            variants.append({**base, "backend": "peer",
                             "label": "dcgan64, plain PyTorch (pytorch/examples)"})
    return variants


def measure(preset: str, steps: int, backend: str | None = None, batch: int | None = None,
            rounds: int = 3) -> dict:
    """Training img/s of one preset on one backend (default: $KERAS_BACKEND, else TensorFlow),
    in a worker process as the table's rows are: median of `rounds` runs of `steps` steps."""
    from dcgan.config import Config

    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    spec = {"preset": preset, "batch": batch or Config.from_preset(preset).batch_size,
            "steps": steps, "backend": backend, "jit": "auto", "options": {}, "precision": "auto",
            "devices": "auto", "simulate": 0, "label": f"{preset}, {backend}"}
    process = _start(spec)
    spec["info"] = _read(process, spec["label"])
    seconds = []
    for _ in range(rounds):
        process.stdin.write(f"{steps}\n")
        process.stdin.flush()
        seconds.append(_read(process, spec["label"])["seconds"])
    process.stdin.close()
    process.wait()
    return {"img/s": steps * spec["batch"] / statistics.median(seconds), **spec["info"]}


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
    parser.add_argument("--devices", default="auto",
                        help="comma-separated device counts (data-parallel), e.g. 1,2,4,8")
    parser.add_argument("--batch-per-device", action="store_true",
                        help="--batch-size is per device (the global batch grows with --devices)")
    parser.add_argument("--simulate-cpu-devices", type=int, default=0, metavar="N",
                        help="split the CPU into N devices (checks the wiring, not speed)")
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

    speeds = {i: args.steps * variants[i]["batch"] / statistics.median(s)
              for i, s in seconds.items()}
    peer = next((speeds[i] for i, v in enumerate(variants) if v["backend"] == "peer"), None)
    devices = sorted({v["info"]["device"] for v in variants})
    print(f"# {', '.join(devices)}; {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"CPUs; keras {version('keras')}; batch {args.batch_size}"
          f"{' per device' if args.batch_per_device else ''}; median of {args.rounds} "
          f"alternating rounds of {args.steps} steps")
    print("| variant | precision | compiled | layout | ms/step | img/s | TFLOP/s | % of peak "
          "| CelebA epoch (s) | x peer | scaling | spread (img/s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")

    def single_device_speed(spec):  # the same variant on one device, if it ran
        for j, other in enumerate(variants):
            if other.get("info", {}).get("devices") == 1 and all(
                    other.get(k) == spec.get(k) for k in ("preset", "backend", "precision", "jit",
                                                          "options")):
                return speeds[j]
        return None
    for i, spec in enumerate(variants):
        info = spec["info"]
        rates = [args.steps * spec["batch"] / s for s in seconds[i]]
        ratio = f"{speeds[i] / peer:.2f}" if peer and spec["preset"] == "dcgan64" else "-"
        compiled = {True: "yes", False: "no", None: "-"}[info.get("jit")]
        tflops = speeds[i] * info["flops"] / 1e12 if info.get("flops") else None
        share = f"{100 * tflops / info['peak']:.1f}" if tflops and info.get("peak") else "-"
        one, count = single_device_speed(spec), info.get("devices") or 1
        # per-device throughput against one device's: 100 % is perfect scaling
        scaling = f"{100 * speeds[i] / (count * one):.0f} %" if one and count > 1 else "-"
        print(f"| {spec['label']} | {info['precision']} | {compiled} | {info['layout']} | "
              f"{1000 * spec['batch'] / speeds[i]:.0f} | {speeds[i]:.1f} | "
              f"{f'{tflops:.3f}' if tflops else '-'} | {share} | "
              f"{CELEBA_IMAGES / speeds[i]:.0f} ({info['size']}px) | {ratio} | {scaling} | "
              f"{min(rates):.1f}-{max(rates):.1f} |")


if __name__ == "__main__":
    main()
