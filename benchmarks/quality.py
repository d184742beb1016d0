"""Quality on the demo faces for a fixed CPU budget, in SWD x1e3 (lower is better).

    python benchmarks/quality.py [--seconds 420] [--n 1024]
    python benchmarks/quality.py --backends tensorflow,jax,torch [--steps 1024]
    python benchmarks/quality.py --data lfw [--sizes 32,64] [--images 15000] [--recipes ...]

With --data (real photos: `lfw`, the 100 real faces scikit-image ships, or any image
source `--data` takes): one row per recipe and image size, each trained for the same
number of images seen, scored against the real-vs-real floor, with a saved grid; see
`real_faces` below.

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
import numpy as np  # noqa: E402

from dcgan.config import Config  # noqa: E402
from dcgan.data.pipeline import make_dataset  # noqa: E402
from dcgan.data.demo_faces import demo_faces  # noqa: E402
from dcgan.evaluation.scoring import fake_set  # noqa: E402
from dcgan.evaluation.metrics import sliced_wasserstein  # noqa: E402
from dcgan.training.loop import build_gan  # noqa: E402
from dcgan.outputs.sampling import generate  # noqa: E402


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
    per_epoch = steps or max(1, count // config.batch_size)  # the batches never run out
    gan.fit(dataset, epochs=1 if steps else 10_000, steps_per_epoch=per_epoch,
            callbacks=[limit], verbose=0, shuffle=False)
    return gan, untrained, limit.steps


def train_in_stages(config: Config, milestones):
    """Train one GAN through increasing numbers of steps; yield (gan, steps, seconds) at each,
    so one run shows when a recipe gets somewhere (its optimizer state carries on)."""
    keras.utils.set_random_seed(config.seed)
    dataset, _ = make_dataset(config)
    gan = build_gan(config)
    done, seconds = 0, 0.0
    for target in milestones:
        start = time.perf_counter()
        gan.fit(dataset, epochs=1, steps_per_epoch=target - done, verbose=0, shuffle=False)
        seconds += time.perf_counter() - start
        done = target
        yield gan, done, seconds


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


# The demo preset's settings until dcgan 0.7 (before doubled rates and R1): the demo+...
# recipes below were measured as changes to these, and keep meaning that.
DEMO_BEFORE = {"d_learning_rate": 1e-4, "g_learning_rate": 2e-4, "r1_gamma": 0.0}
LR2X = {"d_learning_rate": 2e-4, "g_learning_rate": 4e-4}  # both rates doubled

# Recipes for the real-photo table: (preset, changes).  The networks are resized to each
# --sizes entry (dcgan: one g_width per doubling from 4x4; seed: as its preset allows).
RECIPES = {
    "dcgan": ("dcgan64", {}),
    "dcgan+diffaugment": ("dcgan64", {"diffaugment": "color,translation,cutout"}),
    "dcgan+diffaugment-ct": ("dcgan64", {"diffaugment": "color,translation"}),
    "dcgan+ada": ("dcgan64", {"diffaugment": "color,translation,cutout", "ada_target": 0.6}),
    "dcgan+sn+hinge": ("dcgan64", {"spectral_norm": True, "loss": "hinge"}),
    "dcgan+r1": ("dcgan64", {"r1_gamma": 1.0}),
    "dcgan+ada+r1": ("dcgan64", {"diffaugment": "color,translation,cutout", "ada_target": 0.6,
                                 "r1_gamma": 1.0}),
    "dcgan+translation": ("dcgan64", {"diffaugment": "translation"}),
    "faces64": ("faces64", {}),  # the recommended preset: the row above, as a preset
    "dcgan+ada-ct": ("dcgan64", {"diffaugment": "color,translation", "ada_target": 0.6}),
    "dcgan+diffaugment-ct+ttur": ("dcgan64", {"diffaugment": "color,translation",
                                              "d_learning_rate": 1e-4, "g_learning_rate": 2e-4}),
    "dcgan+diffaugment-ct+r1": ("dcgan64", {"diffaugment": "color,translation", "r1_gamma": 0.1}),
    "dcgan+diffaugment-ct+ema99": ("dcgan64", {"diffaugment": "color,translation",
                                               "ema_decay": 0.99}),
    "demo": ("demo", {}),  # the preset as it is
    "demo-before": ("demo", DEMO_BEFORE),  # as it was until dcgan 0.7
    "demo+translation": ("demo", {**DEMO_BEFORE, "diffaugment": "translation"}),
    # For the demo faces' 7-minute budget (the default mode with --recipes):
    "demo+reuse": ("demo", {**DEMO_BEFORE, "reuse_fakes": True}),  # one G forward per step: more steps
    "demo+ema995": ("demo", {**DEMO_BEFORE, "ema_decay": 0.995}),
    "demo+32k": ("demo", {**DEMO_BEFORE, "demo_images": 32768}),  # more distinct faces, less memorising
    "demo+ema998": ("demo", {**DEMO_BEFORE, "ema_decay": 0.998}),
    "demo+lr2x": ("demo", {**DEMO_BEFORE, **LR2X}),
    "demo+b32": ("demo", {**DEMO_BEFORE, "batch_size": 32}),  # twice the steps for the same images
    "demo+nonoise": ("demo", {**DEMO_BEFORE, "label_noise": 0.0}),
    "demo+wide": ("demo", {**DEMO_BEFORE, "g_widths": (256, 128, 64)}),
    "demo+hinge": ("demo", {**DEMO_BEFORE, "loss": "hinge"}),
    "demo+lr2x+nonoise": ("demo", {**DEMO_BEFORE, **LR2X, "label_noise": 0.0}),
    "demo+b128": ("demo", {**DEMO_BEFORE, **LR2X, "batch_size": 128}),
    # the demo faces vary in ~30 independent ways (two background colours, skin, hair, eyes,
    # ~15 shapes and places): does a 32-d latent limit how many of them G covers?
    "demo+lr2x+z128": ("demo", {**DEMO_BEFORE, **LR2X, "latent_dim": 128}),
    "demo+lr2x+z16": ("demo", {**DEMO_BEFORE, **LR2X, "latent_dim": 16}),
    "demo+lr4x": ("demo", {**DEMO_BEFORE, "d_learning_rate": 4e-4, "g_learning_rate": 8e-4}),
    "demo+lr2x+32k": ("demo", {**DEMO_BEFORE, **LR2X, "demo_images": 32768}),
    "demo+lr2x+w256": ("demo", {**DEMO_BEFORE, **LR2X, "g_widths": (256, 64, 32)}),  # wider where the layout is drawn
    # the 16-px level (layout and colour) gets worse from 1,500 to 3,000 steps while fine
    # detail improves: coverage lost as D sharpens, what R1 is for
    "demo+lr2x+r1": ("demo", {**DEMO_BEFORE, **LR2X, "r1_gamma": 0.1}),
    "demo+lr2x+r1g1": ("demo", {**DEMO_BEFORE, **LR2X, "r1_gamma": 1.0}),
    # The seed model.  "seed" is the preset as it is now (G 2e-4, no dropout in D);
    # "seed-before" as it was until dcgan 0.5 (G 1e-4, D dropout 0.4), the rows between say
    # which of the two changes did what (docs/real_faces.md, "The seed model").
    "seed": ("seed128", {}),
    "seed-before": ("seed128", {"g_learning_rate": 1e-4, "d_dropout": 0.4}),
    "seed-before+ttur": ("seed128", {"d_dropout": 0.4}),
    "seed-before-dropout": ("seed128", {"g_learning_rate": 1e-4}),
    "seed-before+icnr": ("seed128", {"g_learning_rate": 1e-4, "d_dropout": 0.4,
                                     "g_transpose_init": "icnr"}),
    "seed+translation": ("seed128", {"diffaugment": "translation"}),
    "seed+icnr": ("seed128", {"g_transpose_init": "icnr"}),
    "seed+lr2e-4": ("seed128", {"d_learning_rate": 2e-4}),
    "seed+ema99": ("seed128", {"ema_decay": 0.99}),
}


def lfw_folder(folder) -> str:
    """Write scikit-image's 100 real LFW faces (25x25 grey, shipped inside the package:
    no download) as PNG files into `folder`; return it."""
    from pathlib import Path

    from PIL import Image
    from skimage.data import lfw_subset

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    faces = lfw_subset()[:100]  # the other 100 of the subset are not faces
    for i, face in enumerate(faces):
        Image.fromarray((face * 255).round().astype("uint8")).convert("RGB").save(folder / f"{i:03d}.png")
    return str(folder)


def recipe_config(name: str, size: int, data: str, batch_size: int) -> Config:
    preset, changes = RECIPES[name]
    base = Config.from_preset(preset)
    if base.architecture == "dcgan":
        doublings = size.bit_length() - 3  # 4 * 2**k = size
        changes = {"g_widths": tuple(base.g_widths[-1] * 2 ** i for i in reversed(range(doublings))),
                   **changes}
    return Config.from_preset(preset, image_size=size, data=data, batch_size=batch_size,
                              **changes)


def real_faces(args) -> None:
    """One row per (size, recipe): SWD of the EMA and raw generators vs the real-vs-real
    floor, a diversity ratio, and a grid, after the same number of images seen."""
    import tempfile
    from pathlib import Path

    from dcgan.data.pipeline import load_real_images
    from dcgan.outputs.images import save_grid
    from dcgan.evaluation.metrics import checkerboard_energy, mean_pairwise_distance, real_floor

    data = lfw_folder(Path(tempfile.mkdtemp()) / "lfw") if args.data == "lfw" else args.data
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budgets = [int(n) for n in str(args.images).split(",")]
    print(f"# {args.data}: {args.images} images seen per row, batch {args.batch_size}, "
          f"{keras.backend.backend()}, {os.cpu_count()} CPUs; SWD x1e3 (avg over levels; "
          "fakes and reals in halves, as the floor); diversity = mean pairwise distance of "
          "16x16 thumbnails, fake / real; checkerboard = % of spectral energy at the 2-pixel "
          "period (EMA samples; real faces in the header)")
    print("| size | recipe | images seen | seconds | SWD EMA | SWD raw | floor | EMA / floor "
          "| diversity EMA | checkerboard % | grid |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size in [int(s) for s in args.sizes.split(",")]:
        for name in args.recipes.split(","):
            try:
                config = recipe_config(name, size, data, args.batch_size)
            except Exception as error:  # e.g. a preset that cannot make this size
                print(f"| {size} | {name} | - | - | - | - | - | - | - | - | {error} |", flush=True)
                continue
            real = load_real_images(config)
            if name == args.recipes.split(",")[0]:
                print(f"| {size} | (real faces) | - | - | - | - | - | - | 1 | "
                      f"{100 * checkerboard_energy(real):.2f} | - |", flush=True)
            half = len(real) // 2
            floor = real_floor(real)["swd_x1e3_avg"]
            milestones = sorted({max(1, images // config.batch_size) for images in budgets})

            def swd_of(generator):
                fakes = fake_set(generator, 2 * half)
                order = np.random.default_rng(0).permutation(len(real))
                halves = real[order[:half]], real[order[half:2 * half]]
                return fakes, np.mean([sliced_wasserstein(h, f)["swd_x1e3_avg"] for h, f in
                                       zip(halves, (fakes[:half], fakes[half:]))])

            for gan, steps, seconds in train_in_stages(config, milestones):
                ema_fakes, ema = swd_of(gan.sampling_generator)
                _, raw = swd_of(gan.generator)
                diversity = mean_pairwise_distance(ema_fakes) / mean_pairwise_distance(real)
                seen = steps * config.batch_size
                suffix = f"_{seen}" if len(milestones) > 1 else ""
                grid = out / f"{Path(str(args.data)).name}_{size}_{name.replace('+', '_')}{suffix}.png"
                save_grid(grid, generate(gan, 64, seed=1))
                print(f"| {size} | {name} | {seen} | {seconds:.0f} | {ema:.1f} | "
                      f"{raw:.1f} | {floor:.1f} | {ema / floor:.2f} | {diversity:.2f} | "
                      f"{100 * checkerboard_energy(ema_fakes):.2f} | {grid} |",
                      flush=True)


def demo_recipes(args) -> None:
    """The demo faces, each recipe trained for --seconds (or scored at --at-steps): SWD of raw
    and EMA generators vs the same held-out faces as the standard table.  With several
    --seeds, each recipe runs once per seed and a mean row (with the spread over seeds) follows:
    one run's EMA / floor moves by about 0.25 (one standard deviation) from seed to seed at
    3,000 steps, so single rows cannot tell apart recipes that differ by less than about 0.5."""
    n = args.n
    real, floor_set = demo_faces(n, 32, seed=101), demo_faces(n, 32, seed=202)
    floor = sliced_wasserstein(real, floor_set)["swd_x1e3_avg"]
    floor_levels = " / ".join(f"{v:.1f}" for v in
                              sliced_wasserstein(real, floor_set)["swd_x1e3"].values())
    print(f"# demo faces 32x32, {args.seconds:.0f} s of training per recipe on {os.cpu_count()} "
          f"CPUs, {keras.backend.backend()}; SWD x1e3 vs {n} held-out faces, floor {floor:.2f} "
          f"(per level, 32 px / 16 px: {floor_levels})")
    print("| recipe | seed | steps | images seen | seconds | SWD raw | SWD EMA | EMA per level "
          "| EMA / floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.recipes.split(","):
        preset, changes = RECIPES[name]
        ratios = {}  # steps -> EMA / floor of each seed
        for seed in args.seeds:
            config = Config.from_preset(preset, **{"seed": seed, **changes})
            if args.at_steps:  # one continuing run, scored at each step count
                stages = train_in_stages(config, args.at_steps)
            else:
                gan, _, steps = train_for(config, args.seconds)
                stages = [(gan, steps, args.seconds)]
            for gan, steps, seconds in stages:
                raw = sliced_wasserstein(real, fake_set(gan.generator, n))["swd_x1e3_avg"]
                ema_levels = sliced_wasserstein(real, fake_set(gan.sampling_generator, n))
                ema = ema_levels["swd_x1e3_avg"]
                levels = " / ".join(f"{v:.1f}" for v in ema_levels["swd_x1e3"].values())
                key = steps if args.at_steps else "budget"
                ratios.setdefault(key, []).append(ema / floor)
                print(f"| {name} | {seed} | {steps} | {steps * config.batch_size} | {seconds:.0f} | "
                      f"{raw:.2f} | {ema:.2f} | {levels} | {ema / floor:.2f} |", flush=True)
        if len(args.seeds) > 1:
            for key, values in ratios.items():
                print(f"| {name} | mean of {len(values)} | {key} | | | | | | "
                      f"**{np.mean(values):.2f}** +- {np.std(values):.2f} |", flush=True)


def int_list(text: str) -> list[int]:
    """'1500,3000' -> [1500, 3000]; argparse turns the ValueError into one usage line."""
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        numbers = []
    if not numbers:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas")
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=420, help="training budget per run")
    parser.add_argument("--n", type=int, default=1024, help="images per SWD set")
    parser.add_argument("--backends", default=None,
                        help="instead: the same number of --steps on each of these Keras backends")
    parser.add_argument("--steps", type=int, default=1024, help="with --backends: steps per backend")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None,
                        help="instead: real photos, 'lfw' (scikit-image's 100 faces) or any --data")
    parser.add_argument("--sizes", default="32,64", help="with --data: image sizes")
    parser.add_argument("--images", default="15000",
                        help="with --data: images seen per row; a list (3000,6000,15000) scores "
                             "one run of each recipe at each budget, so it shows when faces come")
    parser.add_argument("--batch-size", type=int, default=32, help="with --data: batch size")
    parser.add_argument("--recipes", default=None,
                        help=f"some of {', '.join(RECIPES)} (with --data: default all; without: "
                             "the demo faces' rows for these recipes instead of the standard table)")
    parser.add_argument("--at-steps", type=int_list, default=[],
                        help="with --recipes (demo faces): instead of --seconds, score one "
                             "continuing run of each recipe after these numbers of steps")
    parser.add_argument("--seeds", type=int_list, default=[0],
                        help="with --recipes (demo faces): run each recipe once per seed "
                             "(0,1,2) and add a mean row")
    parser.add_argument("--out", default="runs/quality", help="with --data: where grids go")
    args = parser.parse_args()
    unknown = [name for name in (args.recipes or "").split(",") if name and name not in RECIPES]
    if unknown:
        parser.error(f"--recipes: no recipe named {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    if args.data:
        args.recipes = args.recipes or ",".join(RECIPES)
        return real_faces(args)
    if args.recipes:
        return demo_recipes(args)
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
