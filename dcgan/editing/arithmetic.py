"""Radford's arithmetic on faces: `smiling woman - neutral woman + neutral man = smiling man`,
each concept the mean latent of a few exemplars (Radford et al. 2016, Fig. 7).

An expression is terms joined by `+` and `-`, each optionally scaled (`2*Smiling`):

- a seed (`12`) or seeds averaged (`3,17,41`, ranges too: `3-5,9`): `generate --seeds`' faces;
- a latent file (`me.npy`, as `python -m dcgan project` writes) or several averaged (`a.npy,b.npy`);
- a named direction of the run (`Smiling`, `Smiling|Mouth_Open`: python -m dcgan directions),
  added as that many standard deviations;
- a name given with `defines` (`{"smiling woman": "3,17,41"}`; `--define` on the command line).

The picture has a row per term (its exemplars and their mean, as Radford's figure; for a
direction, the result with none, half and all of it) and the result with a few nearby
variations (noise of `noise` standard deviations added to its latent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcgan.errors import DcganError

_OPERATOR = re.compile(r"\s+([+-])\s+")
_SCALED = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*\*\s*(.+)$", re.IGNORECASE)
_SEEDS = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
MAX_EXEMPLARS = 16


@dataclass
class Term:
    """One term: its sign and scale, what it was written as, and its latents."""

    coefficient: float  # sign included
    text: str
    kind: str  # "seeds", "latents" or "direction"
    exemplars: np.ndarray  # (k, latent_dim); a direction: (1, latent_dim), its unit vector

    @property
    def value(self) -> np.ndarray:
        return self.coefficient * self.exemplars.mean(axis=0)


def split_expression(parts) -> list[tuple[float, str]]:
    """['3,17,41', '-', '5,6', '+', '2*Smiling'] (or one string 'a - b + c') ->
    [(1, '3,17,41'), (-1, '5,6'), (2, 'Smiling')]; DcganError, one line, if malformed."""
    if isinstance(parts, str):
        parts = [parts]
    tokens: list[str] = []
    for part in parts:
        pieces = _OPERATOR.split(f" {part.strip()} ") if part.strip() not in ("+", "-") else [part.strip()]
        tokens += [p.strip() for p in pieces if p.strip()]
    expression = " ".join(tokens)
    if not tokens:
        raise DcganError("an empty expression; write terms joined by + and -, e.g. 3,17,41 - 5,6,7 + 8,9,10")
    terms: list[tuple[float, str]] = []
    sign = None  # the operator waiting for its term
    for token in tokens:
        if token in ("+", "-"):
            if sign is not None:
                raise DcganError(f"{expression!r}: two operators in a row; write a term between them")
            sign = 1.0 if token == "+" else -1.0
            continue
        if terms and sign is None:
            raise DcganError(f"{expression!r}: {token!r} follows a term without + or - (quote "
                             "names with spaces as one argument)")
        scale = 1.0
        scaled = _SCALED.match(token)
        if scaled:
            scale, token = float(scaled.group(1)), scaled.group(2).strip()
        terms.append(((sign or 1.0) * scale, token))
        sign = None
    if sign is not None:
        raise DcganError(f"{expression!r}: ends with an operator; a term must follow it")
    return terms


def _seeds(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def resolve_term(coefficient: float, text: str, latent_dim: int, directions=None,
                 defines: dict | None = None, depth: int = 0) -> Term:
    """The latents `text` names (see the module docstring)."""
    from dcgan.outputs.sampling import seed_latents

    defines = defines or {}
    if text in defines and depth < 4:
        inner = resolve_term(coefficient, str(defines[text]).strip(), latent_dim, directions, defines, depth + 1)
        return Term(inner.coefficient, text, inner.kind, inner.exemplars)
    if _SEEDS.match(text):
        seeds = _seeds(text)
        if not seeds or len(seeds) > MAX_EXEMPLARS:
            raise DcganError(f"term {text!r}: give 1 to {MAX_EXEMPLARS} seeds (low-high with low <= high)")
        return Term(coefficient, text, "seeds", seed_latents(seeds, latent_dim))
    if text.lower().endswith(".npy"):
        latents = [_latent_file(Path(p.strip()), latent_dim) for p in text.split(",")]
        return Term(coefficient, text, "latents", np.concatenate(latents))
    if directions is not None:
        name = text.partition("|")[0].strip()
        if name in directions.names:
            return Term(coefficient, text, "direction", directions.vector(text)[None])
    known = f"; this run's directions: {', '.join(directions.names)}" if directions is not None else \
        " (this run has no directions: python -m dcgan directions)"
    raise DcganError(f"term {text!r}: not a seed, seeds (3,17,41), a .npy latent file, a --define'd "
                     f"name or a direction{known}")


def _latent_file(path: Path, latent_dim: int) -> np.ndarray:
    try:
        latent = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DcganError(f"{path}: no such latent file (python -m dcgan project writes them)") from None
    except (OSError, ValueError) as e:
        raise DcganError(f"{path}: not a .npy latent file ({e})") from None
    latent = np.asarray(latent, np.float32).reshape(-1, latent.shape[-1] if latent.ndim else 1)
    if latent.shape[-1] != latent_dim or not np.all(np.isfinite(latent)):
        raise DcganError(f"{path}: a latent of {latent.shape[-1]} numbers; this generator takes "
                         f"{latent_dim} (was it projected with another run?)")
    return latent


@dataclass
class ArithmeticResult:
    terms: list[Term]
    latent: np.ndarray  # (latent_dim,)
    image: np.ndarray  # the result's face, [-1, 1]
    variations: np.ndarray  # (v, size, size, 3)
    picture: np.ndarray | None = None  # uint8, the figure


def face_arithmetic(checkpoint, expression, defines: dict | None = None,
                    out: str | Path | None = "arithmetic.png", variations: int = 7,
                    noise: float = 0.25, seed: int = 0, ema: bool = True,
                    best: bool = False) -> ArithmeticResult:
    """Evaluate `expression` (a string or its parts) in `checkpoint`'s latent space; with `out`,
    save the picture there (see the module docstring)."""
    from dcgan.editing.directions import load_directions
    from dcgan.outputs.sampling import generate_images, load_generator

    if variations < 0 or not 0 <= noise <= 2:
        raise DcganError(f"variations={variations}, noise={noise}: variations from 0, noise 0 to 2")
    if out is not None and not str(out).lower().endswith(".png"):
        raise DcganError(f"--out {out}: must be a .png file")
    generator = load_generator(checkpoint, ema=ema, best=best)
    latent_dim = int(generator.input_shape[-1])
    directions = load_directions(checkpoint, required=False)
    terms = [resolve_term(c, t, latent_dim, directions, defines) for c, t in split_expression(expression)]
    latent = np.sum([t.value for t in terms], axis=0).astype(np.float32)
    rng = np.random.default_rng(seed)
    nearby = latent + noise * rng.standard_normal((variations, latent_dim)).astype(np.float32)
    faces = generate_images(generator, np.concatenate([latent[None], nearby]))
    result = ArithmeticResult(terms, latent, faces[0], faces[1:])
    if out is not None:
        result.picture = _picture(generator, terms, latent, faces)
        from dcgan.outputs.images import save_png

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        save_png(out, result.picture)
    return result


def _picture(generator, terms: list[Term], latent: np.ndarray, result_faces: np.ndarray) -> np.ndarray:
    from PIL import Image, ImageDraw

    from dcgan.outputs.images import to_uint8
    from dcgan.outputs.sampling import generate_images

    rows = []
    for term in terms:
        if term.kind == "direction":
            without = latent - term.value
            faces = generate_images(generator, np.stack([without, without + term.value / 2, latent]))
            label = f"{_sign(term.coefficient)} {abs(term.coefficient):g} x {term.text}"
        else:
            exemplars = term.exemplars
            faces = generate_images(generator, np.concatenate([exemplars, exemplars.mean(0, keepdims=True)])
                                    if len(exemplars) > 1 else exemplars)
            scale = "" if abs(term.coefficient) == 1 else f"{abs(term.coefficient):g} x "
            label = f"{_sign(term.coefficient)} {scale}{term.text}"
        rows.append((label, to_uint8(faces)))
    rows.append(("= result", to_uint8(result_faces)))
    size = max(64, int(generator.output_shape[1]))
    label_width, pad = 180, 4
    columns = max(len(faces) for _, faces in rows)
    width = label_width + columns * (size + pad) + pad
    canvas = Image.new("RGB", (width, len(rows) * (size + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, (label, faces) in enumerate(rows):
        top = pad + r * (size + pad)
        draw.text((pad, top + size // 2 - 6), label[:28], fill=(0, 0, 0))
        for c, face in enumerate(faces):
            image = Image.fromarray(face).resize((size, size), Image.LANCZOS)
            canvas.paste(image, (label_width + pad + c * (size + pad), top))
    return np.asarray(canvas)


def _sign(value: float) -> str:
    return "-" if value < 0 else "+"
