"""How well projection and attribute directions work, on a demo-trained run (issue 32's goals):

1. projection of generated faces (latent known): reconstruction PSNR;
2. projection of held-out real demo faces: error against the closest of 1,000 random samples;
3. the time of one projection of one 64x64 photo (the `project` command's search);
4. directions: the mean change of every attribute's classifier score (0-1) when each learned
   direction moves 256 held-out seeds +2 standard deviations (the matrix), the share of seeds
   whose own attribute rose, and conditional directions (`A|B`, B the attribute A moves most).

    python benchmarks/latent_edits.py --run runs/demo      # a run of `make demo`
    python benchmarks/latent_edits.py --train-epochs 15    # trains one first (demo preset)
    python benchmarks/latent_edits.py --run runs/demo --ablations   # + what else was tried
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dcgan.config import Config  # noqa: E402
from dcgan.data.demo_faces import demo_faces  # noqa: E402
from dcgan.editing.directions import classifier_file, direction_effects, learn_directions  # noqa: E402
from dcgan.errors import DcganError  # noqa: E402
from dcgan.editing.projection import (ProjectionSettings, load_discriminator, project,  # noqa: E402
                                      project_images)
from dcgan.outputs.folder import RunPaths, saved_config  # noqa: E402
from dcgan.outputs.sampling import generate_images, generator_file, latents_for, load_generator  # noqa: E402


def psnr(distance):
    return 20 * np.log10(2 / np.maximum(distance, 1e-8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="a demo-data run folder (default: train one)")
    parser.add_argument("--train-epochs", type=int, default=15)
    parser.add_argument("--train-images", type=int, default=8192, help="demo faces it trains on")
    parser.add_argument("--faces", type=int, default=32, help="faces projected in 1. and 2.")
    parser.add_argument("--random", type=int, default=1000, help="random samples compared in 2.")
    parser.add_argument("--steps", type=int, default=ProjectionSettings.steps)
    parser.add_argument("--seeds", type=int, default=256, help="held-out seeds in 4.")
    parser.add_argument("--images", type=int, default=8192, help="labelled images for directions")
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--epochs", type=int, default=10, help="classifier epochs")
    parser.add_argument("--ablations", action="store_true",
                        help="also: the search's knobs one at a time, other boundary fits")
    args = parser.parse_args()

    run = Path(args.run) if args.run else _train(args.train_epochs, args.train_images)
    config, _ = saved_config(RunPaths(run), say=False)
    if config is None or config.data != "demo":
        raise SystemExit(f"{run}: needs a run trained on the demo data (its faces carry attributes)")
    generator = load_generator(run)
    discriminator = load_discriminator(generator_file(run))
    latent_dim, size = int(generator.input_shape[-1]), int(generator.output_shape[1])
    knobs = ProjectionSettings(steps=args.steps)
    print(f"# Keras {keras.__version__} on {keras.backend.backend()}, {os.cpu_count()} CPUs; run {run} "
          f"({config.preset}, {size}x{size}, {latent_dim}-d latent); projection: {knobs.steps} steps, "
          f"{knobs.starts} starts, feature weight {knobs.feature_weight}")

    print("\n| projected | faces | PSNR mean, dB | PSNR min, dB | RMS error | closest of random samples | ratio |")
    print("|---|---|---|---|---|---|---|")
    known = generate_images(generator, latents_for(args.faces, latent_dim, 12345))
    found = project_images(generator, known, discriminator, knobs)
    print(f"| generated faces (latent known) | {args.faces} | {found.psnr.mean():.1f} | "
          f"{found.psnr.min():.1f} | {found.distances.mean():.4f} | - | - |")
    held_out = demo_faces(args.faces, size, first=config.demo_images).astype(np.float32) / 127.5 - 1
    found = project_images(generator, held_out, discriminator, knobs)
    pool = generate_images(generator, latents_for(args.random, latent_dim, 777))
    closest = np.array([np.sqrt(np.mean(np.square(pool - face).reshape(len(pool), -1), 1)).min()
                        for face in held_out])
    print(f"| held-out real demo faces | {args.faces} | {psnr(found.distances).mean():.1f} | "
          f"{psnr(found.distances).min():.1f} | {found.distances.mean():.4f} | {closest.mean():.4f} "
          f"| {found.distances.mean() / closest.mean():.3f} |")
    if args.ablations:
        print("\n| the search, one knob changed (held-out real faces) | RMS error | ratio to random |")
        print("|---|---|---|")
        for change in ({"steps": 300}, {"steps": 800}, {"starts": 8}, {"candidates": 1024},
                       {"feature_weight": 0.0}, {"feature_weight": 0.2}, {"norm_weight": 0.0},
                       {"norm_weight": 0.01}, {"learning_rate": 0.05}, {"noise": 0.0}):
            knob = ProjectionSettings(**{**knobs.__dict__, **change})
            error = project_images(generator, held_out, discriminator, knob).distances.mean()
            print(f"| {change} | {error:.4f} | {error / closest.mean():.3f} |")

    photo = Path(tempfile.mkdtemp()) / "photo.png"
    from PIL import Image

    Image.fromarray(demo_faces(1, 64, first=config.demo_images)[0]).save(photo)
    timings = []
    for reference in (False, True):
        start = time.perf_counter()
        project(run, [photo], photo.parent / "out", knobs, reference=reference)
        timings.append(time.perf_counter() - start)
    print("\n| one 64x64 photo, `project` | seconds |")
    print("|---|---|")
    print(f"| search only (--no-reference) | {timings[0]:.1f} |")
    print(f"| with the run's reference (4 of its images projected too) | {timings[1]:.1f} |")

    start = time.perf_counter()
    out = photo.parent / "directions.npz"  # not the run's own: a benchmark leaves it as it was
    try:
        directions = learn_directions(run, images=args.images, samples=args.samples,
                                      epochs=args.epochs, out=out)
    except DcganError as e:
        print(f"\n| directions | none learned: {e} |\n|---|---|")
        return
    learn_seconds = time.perf_counter() - start
    classifier = keras.saving.load_model(classifier_file(out), compile=False, safe_mode=True)
    columns = directions.classes or directions.names
    seeds = range(10**6, 10**6 + args.seeds)
    changes, rose = direction_effects(generator, classifier, directions, directions.names, seeds)
    print(f"\n# directions learned in {learn_seconds:.0f} s ({args.images} labelled images, "
          f"{args.samples} samples, {args.epochs} classifier epochs); +2 sd on {args.seeds} held-out seeds")
    print("| direction | held-out accuracy | own score rose on | own change | others' mean abs change | ratio | "
          + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(columns))
    worst = {}
    for i, name in enumerate(directions.names):
        own = directions.column(name)
        others = np.delete(np.abs(changes[i]), own)
        worst[name] = columns[int(np.argmax(np.where(np.arange(len(columns)) == own, -1, np.abs(changes[i]))))]
        print(f"| {name} | {directions.accuracy[name]:.2f} | {rose[i]:.0%} | {changes[i, own]:+.3f} | "
              f"{others.mean():.3f} | {others.mean() / max(changes[i, own], 1e-6):.2f} | "
              + " | ".join(f"{c:+.2f}" for c in changes[i]) + " |")

    if args.ablations:
        _other_fits(generator, classifier, directions, args.samples, seeds)

    conditional = [f"{name}|{worst[name]}" for name in directions.names if worst[name] in directions.names]
    cond_changes, cond_rose = direction_effects(generator, classifier, directions, conditional, seeds)
    print("\n| conditional direction | own score rose on | own change | held attribute's change, plain | "
          "held attribute's change, conditional |")
    print("|---|---|---|---|---|")
    for j, name in enumerate(conditional):
        target, held = name.split("|")
        plain = changes[directions.names.index(target), columns.index(held)]
        print(f"| {name} | {cond_rose[j]:.0%} | {cond_changes[j, directions.column(name)]:+.3f} | "
              f"{plain:+.3f} | {cond_changes[j, columns.index(held)]:+.3f} |")


def _other_fits(generator, classifier, directions, samples, seeds) -> None:
    """The same classifier's labels, other ways to fit each boundary: the mean over directions
    of (others' mean abs change / own change) and of the share of seeds whose own score rose."""
    from dcgan.editing.directions import Directions, classifier_logits, linear_boundary

    latent_dim = directions.vectors.shape[1]
    z = latents_for(samples, latent_dim, 1)  # the seed learn_directions draws its samples from
    logits = classifier_logits(classifier, generate_images(generator, z))
    x = np.hstack([z, np.ones((len(z), 1))])

    def least_squares(y):
        w = np.linalg.solve(x.T @ x + 1e-3 * np.eye(latent_dim + 1), x.T @ y)[:-1]
        return w / np.linalg.norm(w)

    def surest(j, share):
        keep = np.abs(logits[:, j]) >= np.quantile(np.abs(logits[:, j]), 1 - share)
        return linear_boundary(z[keep], logits[keep, j] > 0)[0]

    columns = [directions.column(n) for n in directions.names]
    fits = {"logistic, every sample (the default)": lambda j: linear_boundary(z, logits[:, j] > 0)[0],
            "logistic, the surer half": lambda j: surest(j, 0.5),
            "logistic, the surest 30 %": lambda j: surest(j, 0.3),
            "least squares on the logits": lambda j: least_squares(logits[:, j])}
    print("\n| boundary fit | mean ratio others / own | mean share of seeds whose own score rose |")
    print("|---|---|---|")
    for label, fit in fits.items():
        found = Directions(directions.names, np.stack([fit(j) for j in columns]).astype(np.float32),
                           directions.accuracy, {}, directions.classes)
        changes, rose = direction_effects(generator, classifier, found, found.names, seeds)
        ratios = [np.delete(np.abs(changes[i]), c).mean() / max(changes[i, c], 1e-6)
                  for i, c in enumerate(columns)]
        print(f"| {label} | {np.mean(ratios):.2f} | {rose.mean():.0%} |")


def _train(epochs: int, images: int) -> Path:
    from dcgan.training.loop import train

    out = Path(tempfile.mkdtemp()) / "demo"
    config = Config.from_preset("demo", epochs=epochs, demo_images=images, out_dir=str(out))
    train(config, progress=False)
    return out


if __name__ == "__main__":
    main()
