"""Named attribute directions in a generator's latent space, learned as InterFaceGAN does.

1. A small attribute classifier (dcgan.models.classifier) learns the attributes from labelled
   real images (CelebA's list_attr_celeba layout; the demo faces carry their own), a tenth of
   them held out to measure its accuracy.
2. It labels `samples` generated faces.
3. Per attribute, a linear boundary in latent space separates the faces it calls +1 from those
   it calls -1 (L2-regularised logistic regression); the boundary's unit normal is the
   attribute's direction.  Moving a latent `a` units along it (a standard deviation of the
   latent, whose coordinates are N(0, 1)) adds or removes the attribute.
4. A conditional direction `A|B` is A's normal with B's projected out (InterFaceGAN's
   conditional manipulation): it moves A and leaves B where it was, to first order.  `A|B,C`
   holds both.  Any `A|B` of saved attributes is made on the fly.

Saved as RUN/directions.npz (names, unit vectors, the classifier's held-out accuracy, how well
each boundary separates the samples) beside the classifier (RUN/attributes.keras).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from dcgan.errors import CheckpointError, DataError, DcganError

log = logging.getLogger("dcgan")

DIRECTIONS_NAME = "directions.npz"


@dataclass
class Directions:
    """Unit latent directions by name, with how they were made."""

    names: list[str]
    vectors: np.ndarray  # (len(names), latent_dim) float32, unit length
    accuracy: dict  # attribute -> the classifier's held-out accuracy
    separation: dict  # attribute -> the boundary's accuracy on the generated samples
    classes: list[str] | None = None  # the classifier's outputs, in order (default: names)

    def column(self, name: str) -> int:
        """The classifier output of direction `name`'s attribute (`A` of `A|B`)."""
        return (self.classes or self.names).index(name.partition("|")[0].strip())

    def vector(self, name: str) -> np.ndarray:
        """The unit direction `name`; `A|B` (or `A|B,C`): A with B (and C) held fixed."""
        name = name.strip()
        target, _, held = name.partition("|")
        target = target.strip()
        if target not in self.names:
            raise DcganError(f"no direction {target!r}; this run has "
                             f"{', '.join(self.names) or 'none'} (python -m dcgan directions)")
        v = self.vectors[self.names.index(target)].astype(np.float64)
        fixed = [h.strip() for h in held.split(",") if h.strip()] if held else []
        if fixed:
            for h in fixed:
                if h not in self.names:
                    raise DcganError(f"{name}: no direction {h!r} to hold fixed; this run has "
                                     f"{', '.join(self.names)}")
            basis, _ = np.linalg.qr(self.vectors[[self.names.index(h) for h in fixed]].T.astype(np.float64))
            v = v - basis @ (basis.T @ v)
            if np.linalg.norm(v) < 1e-6:
                raise DcganError(f"{name}: {target} lies in the span of what is held fixed")
        return (v / np.linalg.norm(v)).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        from dcgan.io import atomic_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, names=np.array(self.names), vectors=self.vectors,
                     accuracy=np.array([self.accuracy.get(n, np.nan) for n in self.names]),
                     separation=np.array([self.separation.get(n, np.nan) for n in self.names]),
                     classes=np.array(self.classes or self.names))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Directions":
        try:
            with np.load(path, allow_pickle=False) as data:
                names = [str(n) for n in data["names"]]
                return cls(names, data["vectors"].astype(np.float32),
                           dict(zip(names, map(float, data["accuracy"]))),
                           dict(zip(names, map(float, data["separation"]))),
                           [str(n) for n in data["classes"]] if "classes" in data else None)
        except (OSError, KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: not a directions file ({e})") from None


def run_folder(generator_path: Path) -> Path | None:
    """The run folder a generator file belongs to (the folder with its config.json), or None."""
    for folder in list(generator_path.parents)[:3]:
        if (folder / "config.json").is_file():
            return folder
    return None


def directions_file(checkpoint) -> Path:
    """Where `checkpoint`'s directions live: RUN/directions.npz, or NAME.directions.npz beside
    a lone generator file."""
    from dcgan.outputs.sampling import local_spec

    path = local_spec(checkpoint)
    folder = path if path.is_dir() else run_folder(path)
    if path.is_dir() and not (path / "config.json").is_file() and path.name == "checkpoints":
        folder = path.parent
    if folder is not None:
        return folder / DIRECTIONS_NAME
    return path.with_name(f"{path.stem}.directions.npz")


def load_directions(checkpoint, required: bool = True) -> Directions | None:
    """The run's saved directions; without them, CheckpointError (or None if not `required`)."""
    path = directions_file(checkpoint)
    if not path.is_file():
        if not required:
            return None
        raise CheckpointError(f"{checkpoint}: no attribute directions yet; make them with: "
                              f"python -m dcgan directions --checkpoint {checkpoint}")
    return Directions.load(path)


def parse_edits(text: str) -> dict[str, float]:
    """'Smiling=+2,Eyeglasses=-1' -> {'Smiling': 2.0, 'Eyeglasses': -1.0}; `Smiling|Male=2` too."""
    edits: dict[str, float] = {}
    # A comma also separates held attributes in `A|B,C=2`: split on commas before NAME=.
    parts, current = [], ""
    for piece in text.split(","):
        current = f"{current},{piece}" if current else piece
        if "=" in piece:
            parts.append(current)
            current = ""
    if current or not parts:
        raise DcganError(f"--edit {text}: expected NAME=AMOUNT pairs, e.g. Smiling=+2,Bangs=-1")
    for part in parts:
        name, _, amount = part.rpartition("=")
        try:
            value = float(amount)
        except ValueError:
            raise DcganError(f"--edit {text}: {amount!r} is not a number (in {part!r})") from None
        if not name.strip() or not np.isfinite(value):
            raise DcganError(f"--edit {text}: expected NAME=AMOUNT pairs, e.g. Smiling=+2,Bangs=-1")
        edits[name.strip()] = value
    return edits


def edit_vector(directions: Directions, edits: dict[str, float]) -> np.ndarray:
    """The latent offset of `edits`: `amount` standard deviations along each named direction."""
    shift = np.zeros(directions.vectors.shape[1], np.float32)
    for name, amount in edits.items():
        shift += np.float32(amount) * directions.vector(name)
    return shift


def apply_edits(latents: np.ndarray, directions: Directions, edits: dict[str, float]) -> np.ndarray:
    """`latents` moved `amount` standard deviations along each named direction."""
    return (np.asarray(latents, np.float32) + edit_vector(directions, edits)).astype(np.float32)


# ------------------------------------------------------------------ learning
def labelled_images(config, labels: str | Path | None, data: str | None, size: int,
                    limit: int, seed: int = 0):
    """(uint8 images (n, size, size, 3), Labels) of up to `limit` labelled real images."""
    from dcgan import settings
    from dcgan.data.attributes import Labels, demo_labelled_images, read_labels
    from dcgan.data.decode import decode_all_with_pillow
    from dcgan.data.sources import open_source

    spec = data or (config.data if config is not None else None)
    if labels is None:
        if spec == "demo":
            return demo_labelled_images(limit, size)
        raise DataError("--labels FILE.csv is needed (CelebA's list_attr_celeba.csv layout; the "
                        "built-in demo faces need none)")
    table = read_labels(labels)
    if spec is None:
        raise DataError("--data FOLDER is needed: where the labelled images are")
    if spec == "demo":
        raise DataError(f"--labels {labels} with the demo data: leave --labels out, the demo faces "
                        "carry their own (or give --data, the folder the labels describe)")
    source = open_source(spec)
    row_of = {name: i for i, name in enumerate(table.files)}
    matched = [(index, row_of[name]) for index, entry in enumerate(source.entries)
               if (name := PurePosixPath(entry.replace("\\", "/")).name) in row_of]
    if not matched:
        raise DataError(f"{labels}: none of its {len(table.files)} file names (e.g. {table.files[0]}) "
                        f"is an image in {spec}; give the labels of this data set (or --data)")
    if len(matched) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(matched), limit, replace=False))
        matched = [matched[i] for i in keep]
    crop = settings.crop(config, source.is_celeba) if config is not None else 0
    rows = dict(matched)
    images, values, files = [], [], []
    for index, image, _ in decode_all_with_pillow(source, size, crop, [i for i, _ in matched]):
        if image is not None:
            images.append(image)
            values.append(table.values[rows[index]])
            files.append(table.files[rows[index]])
    source.close()
    if not images:
        raise DataError(f"{spec}: none of the labelled images could be decoded")
    return np.stack(images), Labels(table.names, files, np.stack(values))


def train_classifier(images: np.ndarray, values: np.ndarray, epochs: int = 6, seed: int = 0,
                     batch_size: int = 64):
    """(classifier, per-attribute held-out accuracy): trained on 90 % of `images` (uint8) with
    `values` (+1/-1), measured on the other 10 %."""
    import keras

    from dcgan.models.classifier import build_attribute_classifier

    keras.utils.set_random_seed(seed)
    x = images.astype(np.float32) / 127.5 - 1
    y = (values > 0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    held = max(1, len(x) // 10)
    test, train = order[:held], order[held:]
    model = build_attribute_classifier(images.shape[1], values.shape[1], seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x[train], y[train], batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    logits = classifier_logits(model, x[test])
    accuracy = ((logits > 0) == (y[test] > 0.5)).mean(axis=0)
    return model, accuracy


def classifier_logits(classifier, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(n, attributes) logits for images in [-1, 1]."""
    from keras import ops

    return np.concatenate([ops.convert_to_numpy(classifier(images[i:i + batch_size], training=False))
                           for i in range(0, len(images), batch_size)] or
                          [np.zeros((0, int(classifier.output_shape[-1])), np.float32)])


def linear_boundary(latents: np.ndarray, positive: np.ndarray, l2: float = 1e-2):
    """(unit normal, how many samples the boundary puts on their own side): L2-regularised
    logistic regression of `positive` (bool) on `latents`, by Newton's method."""
    n, d = latents.shape
    x = np.hstack([latents.astype(np.float64), np.ones((n, 1))])
    y = positive.astype(np.float64)
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0  # the offset is not pulled to 0
    for _ in range(30):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) / n + reg * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x / n + np.diag(reg + 1e-9)
        update = np.linalg.solve(hessian, grad)
        w -= update
        if np.abs(update).max() < 1e-7:
            break
    normal = w[:-1]
    separation = float(((x @ w > 0) == positive).mean())
    return (normal / max(np.linalg.norm(normal), 1e-12)).astype(np.float32), separation


def learn_directions(checkpoint, labels=None, data: str | None = None, attributes=None,
                     images: int = 8192, samples: int = 16384, epochs: int = 10, seed: int = 0,
                     out: str | Path | None = None, ema: bool = True) -> Directions:
    """Learn and save one direction per attribute (see the module docstring); returns them.
    `attributes`: the names to learn (default: every column that is not one value throughout)."""
    from dcgan.data.attributes import check_attributes
    from dcgan.editing.projection import run_config
    from dcgan.outputs.sampling import generate_images, generator_file, latents_for, load_generator

    for name, value in (("--images", images), ("--samples", samples), ("--epochs", epochs)):
        if value < 1:
            raise DcganError(f"{name} {value}: must be at least 1")
    if images < 20 or samples < 50:
        raise DcganError(f"--images {images} / --samples {samples}: need at least 20 labelled images "
                         "and 50 samples to learn from")
    found = generator_file(checkpoint, ema)
    generator = load_generator(checkpoint, ema=ema)
    size, latent_dim = int(generator.output_shape[1]), int(generator.input_shape[-1])
    config = run_config(found)
    real, table = labelled_images(config, labels, data, size, images, seed)
    where = str(labels) if labels is not None else "the demo faces' attributes"
    names = check_attributes(table, list(attributes) if attributes else None, where)
    skipped = [n for n in table.names if n not in names]
    if skipped and not attributes:
        log.info("skipping %s: one value for every image", ", ".join(skipped))
    values = table.values[:, [table.names.index(n) for n in names]]
    log.info("learning %d attributes from %d labelled images", len(names), len(real))
    classifier, accuracy = train_classifier(real, values, epochs, seed)

    z = latents_for(samples, latent_dim, seed + 1)  # not the seeds the explorer starts from
    scores = classifier_logits(classifier, generate_images(generator, z))
    kept, vectors, separation = [], [], {}
    for j, name in enumerate(names):
        # Every sample: fitting only those the classifier is surest of (InterFaceGAN's top and
        # bottom) or least squares on its logits measured no better (docs/editing.md).
        positive = scores[:, j] > 0
        share = positive.mean()
        if not 0.02 <= share <= 0.98:
            log.warning("skipping %s: the generator draws it on %.0f%% of faces, too few to learn "
                        "its direction from", name, 100 * share)
            continue
        vector, separation[name] = linear_boundary(z, positive)
        kept.append(name)
        vectors.append(vector)
    if not kept:
        raise DcganError(f"{checkpoint}: the generator draws none of the attributes both ways; "
                         "train it longer, then learn directions")
    result = Directions(kept, np.stack(vectors), {n: float(accuracy[names.index(n)]) for n in kept},
                        separation, names)
    out = Path(out) if out is not None else directions_file(checkpoint)
    if out.suffix != ".npz":
        raise DcganError(f"--out {out}: must be a .npz file")
    result.save(out)
    classifier.save(classifier_file(out))
    return result


def classifier_file(directions_path: Path) -> Path:
    """The attribute classifier saved beside a directions file."""
    if directions_path.name == DIRECTIONS_NAME:
        return directions_path.with_name("attributes.keras")
    return directions_path.with_name(directions_path.name.replace(".npz", ".classifier.keras"))


def load_classifier(checkpoint):
    import keras

    path = classifier_file(directions_file(checkpoint))
    if not path.is_file():
        raise CheckpointError(f"{path}: no attribute classifier (python -m dcgan directions)")
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def direction_effects(generator, classifier, directions: Directions, names, seeds,
                      amount: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(mean change of each attribute's score, the share of seeds whose own attribute's logit
    rose) when each direction in `names` moves the latents of `seeds` by `amount`: rows are
    directions, columns the classifier's attributes; a score is the classifier's probability
    that the face has the attribute (0 to 1)."""
    from dcgan.outputs.sampling import generate_images, seed_latents

    z = seed_latents(list(seeds), int(generator.input_shape[-1]))
    def logits(latents):
        return classifier_logits(classifier, generate_images(generator, latents))

    def probability(x):
        return 1 / (1 + np.exp(-x))

    before = logits(z)
    changes, rose = [], []
    for name in names:
        after = logits(z + amount * directions.vector(name))
        changes.append((probability(after) - probability(before)).mean(axis=0))
        own = directions.column(name)  # logits: a face already sure to have it can still gain
        rose.append(float((after[:, own] > before[:, own]).mean()))
    return np.stack(changes), np.array(rose)
