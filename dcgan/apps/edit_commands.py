"""The command line's latent-editing commands: `project`, `arithmetic`, `directions`.

Parsers and thin handlers only; the work is in dcgan.editing.  dcgan.apps.cli adds them.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from dcgan.errors import DcganError


SEARCH_HELP = {
    "steps": "Adam steps of the search",
    "starts": "searches at once, from the closest random latents; the best is kept",
    "candidates": "random latents the starts are picked from",
    "learning_rate": "Adam's peak learning rate (ramped up and down)",
    "noise": "latent noise at the start, fading out, in standard deviations",
    "pixel_weight": "weight of the pixels' squared error",
    "feature_weight": "weight of the run's discriminator's features",
    "norm_weight": "pull towards a typical latent's norm",
    "inception_weight": "weight of the FID network's features; -1: auto, on a GPU where its "
                        "weights are cached",
    "frames": "snapshots of the search in its GIF",
    "seed": "seed of the random starts and noise",
}


def add_parsers(commands, add_generator_flags) -> list[argparse.ArgumentParser]:
    """Add the three commands to `commands` (argparse subparsers); return their parsers."""
    from dcgan.editing.projection import ProjectionSettings

    project = commands.add_parser(
        "project", help="find the latent of your own photo (projection)",
        description=("Find the latent whose face is closest to each photo: cropped and resized as "
                     "the run's training images were, searched from several random starts with "
                     "Adam on pixels plus the run's discriminator's features. Writes NAME.npy (the "
                     "latent: an arithmetic term, an explorer start), NAME.png (photo | "
                     "reconstruction), NAME.gif (the search) and projection.json to --out."))
    add_generator_flags(project)
    project.add_argument("--image", action="append", required=True, metavar="PHOTO",
                         help="a photo of a face (repeat for more)")
    project.add_argument("--out", default="projected", help="output folder (default: projected)")
    project.add_argument("--crop", type=int, default=None, metavar="PIXELS",
                         help="the centred square cut from the photo (default: as the run's data "
                              "was; 0: the whole short side)")
    defaults = ProjectionSettings()
    for f in fields(ProjectionSettings):
        default = getattr(defaults, f.name)
        project.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=type(default),
                             default=default, help=f"{SEARCH_HELP.get(f.name, '')} (default: {default})")
    project.add_argument("--no-reference", action="store_true",
                         help="skip projecting 4 of the run's own images to judge the distances")

    arithmetic = commands.add_parser(
        "arithmetic", help="Radford's face arithmetic: 3,17,41 - 5,6,7 + 8,9,10",
        description=("Add and subtract faces in latent space. A term is a seed, seeds averaged "
                     "(3,17,41), a latent file from `project` (me.npy), a direction of the run "
                     "(Smiling, 2*Smiling, Smiling|Mouth_Open) or a name given with --define. "
                     "The picture shows each term's faces and mean and the result with nearby "
                     "variations."))
    add_generator_flags(arithmetic)
    arithmetic.add_argument("expression", nargs="+", metavar="TERM",
                            help='terms joined by + and -, e.g. 3,17,41 - 5,6,7 + 8,9,10 (quote a '
                                 'name with spaces: "smiling woman")')
    arithmetic.add_argument("--define", action="append", default=[], metavar="NAME=TERM",
                            help='name a term, e.g. --define "smiling woman=3,17,41"')
    arithmetic.add_argument("--variations", type=int, default=7,
                            help="nearby faces beside the result (default: 7)")
    arithmetic.add_argument("--noise", type=float, default=0.25,
                            help="their distance from it, in standard deviations (default: 0.25)")
    arithmetic.add_argument("--out", default="arithmetic.png", help="output PNG (default: arithmetic.png)")
    arithmetic.add_argument("--save-latent", default=None, metavar="FILE.npy",
                            help="also save the result's latent")

    directions = commands.add_parser(
        "directions", help="learn named attribute directions (Smiling, ...) from labels",
        description=("Learn a latent direction per attribute, as InterFaceGAN does: a small "
                     "classifier learns the attributes from labelled real images, labels "
                     "generated faces, and a linear boundary in latent space gives each "
                     "direction. Saved as RUN/directions.npz; the explorer, the web page, "
                     "arithmetic and `generate --edit` use them by name."))
    add_generator_flags(directions, best=False)
    directions.add_argument("--labels", default=None, metavar="FILE.csv",
                            help="attributes per image in CelebA's list_attr_celeba.csv layout "
                                 "(default: the demo faces' own, for a demo-data run)")
    directions.add_argument("--data", default=None,
                            help="the labelled images (default: the run's own data)")
    directions.add_argument("--attributes", default=None, metavar="A,B,...",
                            help="which columns (default: every column not all one value)")
    directions.add_argument("--images", type=int, default=8192,
                            help="labelled images to train the classifier on (default: 8192)")
    directions.add_argument("--samples", type=int, default=16384,
                            help="generated faces to fit the boundaries to (default: 16384)")
    directions.add_argument("--epochs", type=int, default=10, help="classifier epochs (default: 10)")
    directions.add_argument("--out", default=None, help="the .npz (default: RUN/directions.npz)")
    return [project, arithmetic, directions]


def run_project(args) -> None:
    from dcgan.editing.projection import ProjectionSettings, project

    knobs = ProjectionSettings(**{f.name: getattr(args, f.name) for f in fields(ProjectionSettings)})
    summary = project(args.checkpoint, args.image, args.out, knobs, crop=args.crop, ema=not args.raw,
                      best=args.best, reference=not args.no_reference)
    ref = summary["reference_distance"]
    for photo in summary["photos"]:
        print(f"{photo['photo']}: distance {photo['distance']:.3f} ({photo['psnr_db']:.1f} dB) -> "
              f"{photo['latent']}")
        if photo["far"]:
            print(f"{photo['photo']}: not found well: {photo['distance']:.3f} is far above the "
                  f"{ref:.3f} this run reaches on its own training images (a face unlike its "
                  "data: crop it like them, facing the camera)")
    print(f"wrote latents, photo | reconstruction PNGs and search GIFs to {args.out}")


def run_arithmetic(args) -> None:
    import numpy as np

    from dcgan.editing.arithmetic import face_arithmetic

    defines = {}
    for item in args.define:
        name, sep, term = item.partition("=")
        if not sep or not name.strip() or not term.strip():
            raise DcganError(f"--define {item}: expected NAME=TERM, e.g. \"smiling woman=3,17,41\"")
        defines[name.strip()] = term.strip()
    if args.save_latent and not args.save_latent.endswith(".npy"):
        raise DcganError(f"--save-latent {args.save_latent}: must be a .npy file")
    result = face_arithmetic(args.checkpoint, args.expression, defines, out=args.out,
                             variations=args.variations, noise=args.noise, ema=not args.raw,
                             best=args.best)
    if args.save_latent:
        np.save(args.save_latent, result.latent)
    shown = " ".join(f"{'-' if t.coefficient < 0 else '+'} "
                     f"{'' if abs(t.coefficient) == 1 else f'{abs(t.coefficient):g}*'}{t.text}"
                     for t in result.terms).removeprefix("+ ")
    print(f"wrote {shown} = result (and {len(result.variations)} variations) to {args.out}")


def run_directions(args) -> None:
    from dcgan.config import comma_list
    from dcgan.editing.directions import directions_file, learn_directions

    attributes = comma_list(args.attributes) if args.attributes else None
    found = learn_directions(args.checkpoint, labels=args.labels, data=args.data,
                             attributes=attributes, images=args.images, samples=args.samples,
                             epochs=args.epochs, out=args.out, ema=not args.raw)
    out = args.out or directions_file(args.checkpoint)
    print(f"wrote {len(found.names)} directions to {out}:")
    for name in found.names:
        print(f"  {name}: classifier {found.accuracy[name]:.0%} right on held-out images, "
              f"boundary {found.separation[name]:.0%} on generated faces")


HANDLERS = {"project": run_project, "arithmetic": run_arithmetic, "directions": run_directions}
