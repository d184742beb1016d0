"""Command line: `python -m dcgan train|generate|interpolate|evaluate|nearest|compare|export|serve|
project|arithmetic|directions|download` (the editing commands' parsers: dcgan.apps.edit_commands).

The CLI only parses arguments into a Config (or a checkpoint path) and calls
the library; every user error becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields

from dcgan import quiet
from dcgan.apps import edit_commands
from dcgan.config import FIELD_CHOICES, Config, coerce_field, comma_list, field_types
from dcgan.data.download import CELEBA_LICENCE, download_celeba
from dcgan.env import BACKENDS, select_backend
from dcgan.errors import DcganError
from dcgan.evaluation.metrics import FID_NETWORKS, METRICS
from dcgan.outputs.folder import RunPaths, saved_config

# Fields that are set by a dedicated option, or are not for the command line.
_NOT_FLAGS = {"preset"}

EXIT_USER_ERROR = 2


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hyperparameters (override the preset; lists are comma-separated, e.g. 64,128)")
    defaults = Config()
    for f in fields(Config):
        if f.name in _NOT_FLAGS:
            continue
        kind = field_types()[f.name]
        default = getattr(defaults, f.name)
        shown = ",".join(map(str, default)) if kind is tuple else default
        flags = [f"--{f.name.replace('_', '-')}"]
        if f.name == "out_dir":
            flags.insert(0, "--out")
        choices = FIELD_CHOICES.get(f.name)
        group.add_argument(*flags, dest=f.name, default=None, choices=choices,
                           metavar="{" + ",".join(choices) + "}" if choices else kind.__name__.upper(),
                           help=f"(seed128: {shown})")


def _add_generator_flags(parser: argparse.ArgumentParser, best: bool = True) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="a run folder (e.g. runs/demo) or a generator .keras file")
    parser.add_argument("--raw", action="store_true",
                        help="use the raw generator instead of its moving average (EMA)")
    if best:
        parser.add_argument("--best", action="store_true",
                            help="use the best-scoring generator kept during training "
                                 "(RUN/checkpoints/best/), not the last one")


class OneLineErrors(argparse.ArgumentParser):
    """argparse, but a bad argument is one `error:` line like every other error (the usage
    stays in --help)."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="python -m dcgan", description="Train deep convolutional GANs that draw faces.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a GAN", description=(
            "Train a DCGAN. Writes config.json, samples/epoch_NNN.png grids, "
            "checkpoints/*.keras and log.csv to the --out folder."))
    train.add_argument("--preset", default=None, choices=Config.preset_names(),
                       help="starting hyperparameters (default: seed128)")
    train.add_argument("--resume", default=None, metavar="RUN",
                       help="continue the run in this folder from its latest complete checkpoint")
    train.add_argument("--allow-config-change", action="store_true",
                       help="with --resume: accept flags that differ from the saved config")
    train.add_argument("--overwrite", action="store_true",
                       help="replace an earlier run in the --out folder")
    cluster = train.add_argument_group(
        "several hosts (one process per host, same flags on each but --process-id; "
        "default: Keras' KERAS_DISTRIBUTION_* variables, or TF_CONFIG on tensorflow)")
    cluster.add_argument("--job-addresses", default=None, metavar="HOST:PORT[,HOST:PORT...]",
                         help="jax: the coordinator's (process 0's) address; tensorflow: "
                              "every worker's, in process order")
    cluster.add_argument("--num-processes", type=int, default=None, metavar="N",
                         help="how many processes (hosts) train together")
    cluster.add_argument("--process-id", type=int, default=None, metavar="I",
                         help="this process's number, 0..N-1 (0 writes the run folder)")
    _add_config_flags(train)

    generate = commands.add_parser(
        "generate", help="draw images from a trained generator",
        description="Draw images from a trained generator into one PNG grid.")
    _add_generator_flags(generate)
    generate.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    generate.add_argument("--seed", type=int, default=0, help="latent seed (default: 0)")
    generate.add_argument("--seeds", default=None,
                          help="one image per seed, e.g. 0-63 or 1,5,9-12 (instead of --n/--seed)")
    generate.add_argument("--columns", type=int, default=None, help="grid width in images")
    generate.add_argument("--out", default="faces.png", help="output PNG (default: faces.png)")
    generate.add_argument("--edit", default=None, metavar="NAME=AMOUNT[,...]",
                          help="move every face along the run's named directions, in standard "
                               "deviations, e.g. Smiling=+2,Bangs=-1 (python -m dcgan directions)")

    walk = commands.add_parser(
        "interpolate", help="walk the latent space between two seeds",
        description="Interpolate (slerp) between the faces of two seeds: a PNG strip or a GIF.")
    _add_generator_flags(walk)
    walk.add_argument("--from", dest="seed_from", type=int, required=True, help="first seed")
    walk.add_argument("--to", dest="seed_to", type=int, required=True, help="last seed")
    walk.add_argument("--steps", type=int, default=8, help="images along the way (default: 8)")
    walk.add_argument("--out", default="walk.png", help="output .png strip or .gif (default: walk.png)")

    evaluate = commands.add_parser(
        "evaluate", help="score a generator: SWD, FID, KID",
        description=("Score a trained generator against real images, with the real-vs-real floor "
                     "beside each metric. FID/KID use the standard FID Inception network (the "
                     "one published FIDs use; its weights are downloaded once, sha256-checked); "
                     "compare FID only at equal --n."))
    _add_generator_flags(evaluate)
    evaluate.add_argument("--data", default=None, help="real images (default: the run's own data)")
    evaluate.add_argument("--metrics", default="swd",
                          help=f"comma-separated: {', '.join(METRICS)} (default: swd)")
    evaluate.add_argument("--n", type=int, default=1024, help="images per set (default: 1024)")
    evaluate.add_argument("--out", default=None, help="results JSON (default: RUN/eval.json)")
    evaluate.add_argument("--fid-network", default="fid", choices=FID_NETWORKS,
                          help="fid: the standard FID Inception (default); keras: Keras' ImageNet "
                               "InceptionV3, whose FIDs are NOT comparable with published ones")
    evaluate.add_argument("--inception-weights", default=None, metavar="PATH_OR_URL",
                          help="a local copy (or URL) of pt_inception-2015-12-05-6726825d.pth; "
                               "'untrained' for random weights (a smoke test, not a score)")

    nearest = commands.add_parser(
        "nearest", help="the training images closest to generated faces (a copying check)",
        description=("For generated faces (seeds 0..n-1), the k closest training images, in one "
                     "PNG: a row per face, closest first. Distances near 0 mean copies."))
    _add_generator_flags(nearest)
    nearest.add_argument("--data", default=None, help="images to search (default: the run's own data)")
    nearest.add_argument("--n", type=int, default=8, help="generated faces (default: 8)")
    nearest.add_argument("--k", type=int, default=4, help="nearest images per face (default: 4)")
    nearest.add_argument("--out", default="nearest.png", help="output PNG (default: nearest.png)")

    compare = commands.add_parser(
        "compare", help="two runs side by side: grids, loss curves, settings that differ",
        description=("Both runs' sample grids at the same epoch, their loss curves on one plot "
                     "and the settings that differ, in one PNG."))
    compare.add_argument("run_a", metavar="RUN_A")
    compare.add_argument("run_b", metavar="RUN_B")
    compare.add_argument("--epoch", type=int, default=None,
                         help="the epoch to show (default: the latest both runs have)")
    compare.add_argument("--out", default="compare.png", help="output PNG (default: compare.png)")

    export = commands.add_parser(
        "export", help="zip a run's generators, grids, GIF, log and config",
        description=("One zip to take home: generators (.keras, the last and the best kept), "
                     "sample grids, progress GIF, loss plot, log.csv, config.json; not the "
                     "resumable checkpoints."))
    export.add_argument("run", metavar="RUN")
    export.add_argument("--out", default=None, help="the zip (default: RUN/NAME-results.zip)")

    serve = commands.add_parser(
        "serve", help="a web page of a generator's faces (seed, sliders, walk, download)",
        description=("Serve a page to move through a trained generator's faces: seed, sliders, "
                     "a walk between two seeds, truncation, download. A run still training can "
                     "be served; newer generators are picked up as they are saved."))
    serve.add_argument("--checkpoint", required=True, help="a run folder or a generator .keras file")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this machine only; "
                            "0.0.0.0 shares it on your network)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free one)")

    editing = edit_commands.add_parsers(commands, _add_generator_flags)

    for command in (train, generate, walk, evaluate, nearest, serve, *editing):
        command.add_argument(
            "--backend", default=None, choices=BACKENDS,
            help="Keras backend (default: $KERAS_BACKEND; else JAX on a TPU host, else the first "
                 "installed of tensorflow, jax, torch); checkpoints and .keras files work on "
                 "every backend")

    download = commands.add_parser(
        "download", help="fetch a data set (CelebA)",
        description=("Fetch CelebA's aligned images through kagglehub (public data: no login, "
                     "unless Kaggle asks; then the KAGGLE_API_TOKEN secret or KAGGLE_USERNAME/"
                     "KAGGLE_KEY), or from a zip/tar you already have (a path or an http(s) "
                     "URL). Safe to re-run: finished work is skipped. Without any account, "
                     "train straight from the Hugging Face Hub: --data hf:nielsr/CelebA-faces."))
    download.add_argument("dataset", choices=["celeba", "demo"],
                          help="celeba; or demo: the built-in faces as PNG files with their "
                               "attributes (list_attr_celeba.csv), a small labelled data set")
    download.add_argument("--to", default=None,
                          help="target folder (default: data/celeba, data/demo-faces)")
    download.add_argument("--n", type=int, default=2048, help="demo: how many faces (default: 2048)")
    download.add_argument("--size", type=int, default=64, help="demo: their size (default: 64)")
    download.add_argument("--from", dest="source", default=None, metavar="ZIP_OR_URL",
                          help="use this archive instead of Kaggle")
    download.add_argument("--sha256", default=None, help="expected checksum of the archive")
    return parser


def _changes(args: argparse.Namespace) -> dict:
    return {name: coerce_field(name, getattr(args, name))
            for name in field_types() if name not in _NOT_FLAGS and getattr(args, name) is not None}


def config_from_args(args: argparse.Namespace) -> Config:
    """The preset named by `args` (or the resumed run's saved config), with the flags given applied."""
    changes = _changes(args)
    if args.resume:
        if args.preset:
            raise DcganError("--preset and --resume: a resumed run keeps its own preset; drop --preset")
        if changes.get("out_dir", args.resume) != args.resume:
            raise DcganError("--out and --resume name different folders; give just --resume RUN")
        saved, _ = saved_config(RunPaths(args.resume), say=False)  # config.json, or a checkpoint's
        if saved is None:
            raise DcganError(f"{args.resume}: not a run folder (no config.json, no complete "
                             "checkpoint); check the path")
        return saved.replace(**{**changes, "out_dir": args.resume})
    return Config.from_preset(args.preset or "seed128", **changes)


def _train(args: argparse.Namespace) -> None:
    from dcgan.distribute import is_chief, join_cluster
    from dcgan.training.loop import train  # lazy here and below: Keras takes seconds to import

    import keras

    config = config_from_args(args)
    join_cluster(args.job_addresses, args.num_processes, args.process_id, seed=config.seed)
    chief = is_chief()  # in a multi-host run the chief reports; the others speak of trouble only
    if chief:
        print(f"{'resuming' if args.resume else 'training'} preset {config.preset} on "
              f"{config.data} ({config.image_size}x{config.image_size}, {config.epochs} epochs, "
              f"Keras {keras.__version__} on {keras.backend.backend()}) -> {config.out_dir}",
              flush=True)
    else:
        logging.getLogger("dcgan").setLevel(logging.WARNING)
    train(config, resume=bool(args.resume), overwrite=args.overwrite,
          allow_config_change=args.allow_config_change)
    if chief:
        print(f"done: samples in {config.out_dir}/samples, checkpoints in {config.out_dir}/checkpoints")


def _generate(args: argparse.Namespace) -> None:
    if args.n < 1:
        raise DcganError(f"--n {args.n}: must be at least 1")
    if args.columns is not None and args.columns < 1:
        raise DcganError(f"--columns {args.columns}: must be at least 1")
    if not args.out.lower().endswith(".png"):
        raise DcganError(f"--out {args.out}: must be a .png file")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    from dcgan.outputs.sampling import generate  # lazy: Keras

    shift = None
    if args.edit is not None:
        from dcgan.editing.directions import edit_vector, load_directions, parse_edits

        shift = edit_vector(load_directions(args.checkpoint), parse_edits(args.edit))
    images = generate(args.checkpoint, n=args.n, seed=args.seed, out=args.out, columns=args.columns,
                      seeds=seeds, ema=not args.raw, best=args.best, shift=shift)
    edited = f", edited {args.edit}" if shift is not None else ""
    print(f"wrote {len(images)} images{edited} to {args.out}")


def parse_seeds(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]."""
    seeds = []
    try:
        for part in text.replace(" ", "").split(","):
            low, _, high = part.partition("-")
            low_value = int(low)
            high_value = int(high) if high else low_value
            if high_value < low_value or low_value < 0:
                raise ValueError
            seeds.extend(range(low_value, high_value + 1))
    except ValueError:
        raise DcganError(f"--seeds {text}: expected seeds like 0-63 or 1,5,9-12") from None
    if not seeds or len(seeds) > 10_000:
        raise DcganError(f"--seeds {text}: give between 1 and 10000 seeds")
    return seeds


def _interpolate(args: argparse.Namespace) -> None:
    if not args.out.lower().endswith((".png", ".gif")):
        raise DcganError(f"--out {args.out}: must be a .png or .gif file")
    from dcgan.outputs.sampling import interpolate  # lazy: Keras

    interpolate(args.checkpoint, args.seed_from, args.seed_to, steps=args.steps, out=args.out,
                ema=not args.raw, best=args.best)
    print(f"wrote a {args.steps}-step walk from seed {args.seed_from} to {args.seed_to} to {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    metrics = comma_list(args.metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise DcganError(f"--metrics {args.metrics}: choose from {', '.join(METRICS)}")
    if args.n < 16:
        raise DcganError(f"--n {args.n}: need at least 16 images")
    from dcgan.evaluation.scoring import evaluate, summary  # lazy: Keras

    results = evaluate(args.checkpoint, data=args.data, metrics=metrics, n=args.n, ema=not args.raw,
                       out=args.out, fid_network=args.fid_network,
                       inception_weights=args.inception_weights, best=args.best)
    print(summary(results))


def _nearest(args: argparse.Namespace) -> None:
    from dcgan.evaluation.nearest import nearest_faces  # lazy: Keras

    found = nearest_faces(args.checkpoint, data=args.data, n=args.n, k=args.k, out=args.out,
                          ema=not args.raw, best=args.best)
    closest = found.distances[:, 0]
    print(f"wrote {len(closest)} faces and their {found.indices.shape[1]} nearest training images "
          f"to {args.out}; nearest distances (RMS, images in [-1, 1]): "
          + " ".join(f"{d:.3f}" for d in closest))


def _compare(args: argparse.Namespace) -> None:
    from dcgan.apps.compare import common_epoch, compare_runs

    epoch = common_epoch(args.run_a, args.run_b, args.epoch)
    compare_runs(args.run_a, args.run_b, epoch=epoch, out=args.out)
    print(f"wrote {args.run_a} vs {args.run_b} at epoch {epoch} to {args.out}")


def _export(args: argparse.Namespace) -> None:
    from dcgan.apps.export import export_members, export_run

    out = export_run(args.run, args.out)
    print(f"wrote {len(export_members(args.run))} files of {args.run} to {out}")


def _serve(args: argparse.Namespace) -> None:
    from dcgan.apps.serve import make_server  # lazy: Keras

    server = make_server(args.checkpoint, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"serving faces of {args.checkpoint} at http://{host}:{port}/ (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _download(args: argparse.Namespace) -> None:
    if args.dataset == "demo":
        from dcgan.data.attributes import write_demo_folder

        if not 1 <= args.n <= 100_000 or not 8 <= args.size <= 512:
            raise DcganError(f"--n {args.n} --size {args.size}: 1 to 100000 faces of 8 to 512 px")
        labels = write_demo_folder(args.to or "data/demo-faces", args.n, args.size)
        print(f"wrote {args.n} demo faces to {labels.parent / 'images'} and their attributes to "
              f"{labels}; train with --data {labels.parent / 'images'}, learn directions with "
              f"--labels {labels}")
        return
    print(CELEBA_LICENCE)
    folder = download_celeba(args.to or "data/celeba", source=args.source, sha256=args.sha256,
                             progress=sys.stderr.isatty())
    print(f"CelebA is in {folder}; train with: python -m dcgan train --data {folder}")


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("dcgan")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in ("download", "compare", "export"):
        quiet.filter_native_stderr()  # before Keras: no thread may exist when it forks
    _setup_logging()
    try:
        if args.command not in ("download", "compare", "export"):
            select_backend(args.backend)
        commands = {"train": _train, "generate": _generate, "interpolate": _interpolate,
                    "evaluate": _evaluate, "download": _download, "nearest": _nearest,
                    "compare": _compare, "export": _export, "serve": _serve,
                    **edit_commands.HANDLERS}
        commands[args.command](args)
    except DcganError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
