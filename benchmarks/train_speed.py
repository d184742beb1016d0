"""Training speed per Keras backend, beside a plain-PyTorch peer: images/s of the full GAN step.

    python benchmarks/train_speed.py --backends tensorflow,jax,torch --preset dcgan64 \\
        --batch-size 64 [--jit auto] [--rounds 5 --steps 5] [--no-peer]

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


# ----------------------------------------------------------------------- worker side
def _keras_worker(spec: dict):
    import dcgan  # noqa: F401  (first: keeps TensorFlow's C++ start-up lines quiet)
    import keras
    import numpy as np

    from dcgan.config import Config
    from dcgan.models import resolve_data_format
    from dcgan.training import build_gan, resolve_jit_compile

    config = Config.from_preset(spec["preset"], batch_size=spec["batch"], jit_compile=spec["jit"],
                                **spec.get("options", {}))
    keras.utils.set_random_seed(0)
    gan = build_gan(config)
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
    spec["jit_compiled"] = resolve_jit_compile(config.jit_compile)
    spec["data_format"] = resolve_data_format(config)

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
    return peer.run


def worker(spec: dict) -> None:
    run = _peer_worker(spec) if spec["backend"] == "peer" else _keras_worker(spec)
    run(2)  # compile / warm up
    run(spec["steps"])
    print(json.dumps({"ready": True, "jit": spec.get("jit_compiled"),
                      "layout": spec.get("data_format")}), flush=True)
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
    base = {"preset": args.preset, "batch": args.batch_size, "steps": args.steps}
    options = [{}] + [json.loads(o) for o in args.options]
    variants = []
    for backend in args.backends.split(","):
        for jit in args.jit.split(","):
            for option in options:
                label = f"{backend}, jit {jit}" + "".join(f", {k}={v}" for k, v in option.items())
                variants.append({**base, "backend": backend, "jit": jit, "options": option,
                                 "label": label})
    if args.peer and args.preset == "dcgan64":
        variants.append({**base, "backend": "peer", "label": "plain PyTorch (pytorch/examples)"})
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--preset", default="dcgan64")
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
        ready = _read(process, spec["label"])
        spec["jit_compiled"], spec["layout"] = ready.get("jit"), ready.get("layout")
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
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, keras "
          f"{version('keras')}; preset {args.preset}, batch {args.batch_size}; median of "
          f"{args.rounds} alternating rounds of {args.steps} steps")
    print("| variant | compiled | layout | ms/step | img/s | x peer | spread (min-max img/s) |")
    print("|---|---|---|---|---|---|---|")
    for i, spec in enumerate(variants):
        rates = [args.steps * args.batch_size / s for s in seconds[i]]
        ratio = f"{speeds[i] / peer:.2f}" if peer else "-"
        compiled = {True: "yes", False: "no", None: "-"}[spec.get("jit_compiled")]
        layout = spec.get("layout") or "channels_first"  # the peer: PyTorch's NCHW
        print(f"| {spec['label']} | {compiled} | {layout} | {1000 * args.batch_size / speeds[i]:.0f} | "
              f"{speeds[i]:.1f} | {ratio} | {min(rates):.1f}-{max(rates):.1f} |")


if __name__ == "__main__":
    main()
