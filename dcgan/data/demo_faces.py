"""Built-in demo data: procedurally drawn cartoon faces, no download needed.

Each face varies in background, skin, hair (colour, volume, length, fringe),
head shape and position, eye spacing, size and colour, eyebrows, nose and
mouth (width, openness, smile).  Images are deterministic for a seed: image
`i` of seed `s` is the same whatever `n` is asked for.
"""

from __future__ import annotations

import numpy as np

_BLOCK = 256  # images whose parameters come from one RNG stream

_SKIN = np.array([[255, 224, 196], [241, 194, 150], [224, 172, 125], [198, 134, 86],
                  [141, 85, 54], [92, 58, 38]], np.float32)
_HAIR = np.array([[20, 15, 10], [70, 45, 25], [130, 85, 45], [200, 160, 90],
                  [230, 210, 150], [160, 60, 30], [120, 120, 120], [60, 60, 180]], np.float32)
_EYES = np.array([[70, 45, 25], [40, 90, 160], [60, 120, 60], [30, 20, 15]], np.float32)


def demo_faces(n: int, size: int = 64, seed: int = 0, first: int = 0) -> np.ndarray:
    """Return `n` face images as uint8 of shape (n, size, size, 3): images `first` to
    `first + n - 1` of seed `seed` (only their blocks are drawn)."""
    if n < 0 or size < 4 or first < 0:
        raise ValueError(f"demo_faces needs n >= 0, size >= 4 and first >= 0, got n={n}, "
                         f"size={size}, first={first}")
    out = np.empty((n, size, size, 3), np.uint8)
    for start, count, params in _blocks(first + n, seed, first):
        lo = max(first - start, 0)  # the block's first image that is asked for
        for i in range(lo, count, 64):  # render in small chunks to bound memory
            j = min(i + 64, count)
            chunk = {k: v[i:j] for k, v in params.items()}
            out[start + i - first:start + j - first] = _render(chunk, size)
    return out


def _blocks(n: int, seed: int, first: int = 0):
    """(first image, images, their drawing parameters) per block of `_BLOCK` images that holds
    any of images `first` to `n - 1`."""
    for start in range(first // _BLOCK * _BLOCK, n, _BLOCK):
        params = _sample_params(np.random.default_rng([seed, start // _BLOCK]), _BLOCK)
        yield start, min(_BLOCK, n - start), params


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


# name -> (drawing parameter(s) -> a value, threshold): image i has the attribute (+1) when its
# value is above the threshold, else -1.  Names follow CelebA's list_attr_celeba where one fits;
# thresholds sit near each value's median, so every attribute is about half +1.
DEMO_ATTRIBUTES = {
    "Smiling": (lambda p: p["smile"], 0.25),
    "Mouth_Open": (lambda p: p["mouth_open"], 0.08),
    "Wide_Mouth": (lambda p: p["mouth_w"], 0.35),
    "Big_Eyes": (lambda p: p["eye_r"], 0.16),
    "Bangs": (lambda p: -p["fringe"], -0.55),  # a low fringe line covers more forehead
    "Long_Hair": (lambda p: p["hair_length"], 0.4),
    "Light_Hair": (lambda p: _luminance(p["hair"]), 97.0),
    "Pale_Skin": (lambda p: _luminance(p["skin"]), 144.0),
}


def demo_attributes(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """(attribute names, int8 (n, attributes) of +1/-1): what image `i` of `demo_faces(n, seed=
    seed)` was drawn with, in the layout of CelebA's list_attr_celeba (DEMO_ATTRIBUTES)."""
    labels = np.empty((n, len(DEMO_ATTRIBUTES)), np.int8)
    for start, count, params in _blocks(n, seed):
        for j, (value, threshold) in enumerate(DEMO_ATTRIBUTES.values()):
            labels[start:start + count, j] = np.where(value(params)[:count] > threshold, 1, -1)
    return list(DEMO_ATTRIBUTES), labels


def _sample_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    u = lambda lo, hi: rng.uniform(lo, hi, n).astype(np.float32)  # noqa: E731

    def palette(colours: np.ndarray, jitter: float) -> np.ndarray:
        a = rng.integers(0, len(colours), n)
        b = np.minimum(a + 1, len(colours) - 1)
        t = rng.uniform(0, 1, (n, 1))
        c = colours[a] * (1 - t) + colours[b] * t + rng.normal(0, jitter, (n, 3))
        return np.clip(c, 0, 255).astype(np.float32)

    return {
        "bg_top": rng.uniform(30, 230, (n, 3)).astype(np.float32),
        "bg_bottom": rng.uniform(30, 230, (n, 3)).astype(np.float32),
        "skin": palette(_SKIN, 8.0),
        "hair": palette(_HAIR, 10.0),
        "eye": palette(_EYES, 10.0),
        "lips": np.clip(np.stack([u(150, 220), u(50, 100), u(60, 110)], 1), 0, 255),
        "cx": u(-0.12, 0.12), "cy": u(0.02, 0.16),
        "rx": u(0.44, 0.58), "ry": u(0.56, 0.70),
        "hair_volume": u(1.05, 1.25), "hair_length": u(-0.2, 1.0), "fringe": u(0.35, 0.75),
        "eye_y": u(0.12, 0.28), "eye_dx": u(0.33, 0.46), "eye_r": u(0.13, 0.19),
        "brow_tilt": u(-0.25, 0.25),
        "nose_len": u(0.10, 0.22),
        "mouth_y": u(0.42, 0.58), "mouth_w": u(0.25, 0.45),
        "mouth_open": u(0.02, 0.14), "smile": u(-0.3, 0.8),
    }


def _render(p: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Render with soft one-pixel edges (anti-aliased without supersampling)."""
    hi = size
    coords = (np.arange(hi, dtype=np.float32) + 0.5) / hi * 2 - 1
    y = coords[None, :, None]
    x = coords[None, None, :]
    px = 2.0 / hi  # one pixel in these units

    def col(name: str) -> np.ndarray:
        return p[name][:, None, None, :]

    def par(name: str) -> np.ndarray:
        return p[name][:, None, None]

    def ellipse(cx, cy, rx, ry) -> np.ndarray:
        # Approximate signed distance, turned into a soft one-pixel edge.
        r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
        return np.clip(0.5 - (r - 1) * np.minimum(rx, ry) / px, 0, 1)

    def paint(img, mask, colour):
        m = mask[..., None]
        return img * (1 - m) + colour * m

    t = (y + 1) / 2
    img = col("bg_top") * (1 - t[..., None]) + col("bg_bottom") * t[..., None]
    img = np.broadcast_to(img, (len(p["cx"]), hi, hi, 3)).copy()

    cx, cy, rx, ry = par("cx"), par("cy"), par("rx"), par("ry")
    # Hair behind the head: a larger ellipse, plus a fall down the sides for long hair.
    vol = par("hair_volume")
    hair = ellipse(cx, cy - 0.12 * ry, rx * vol, ry * vol)
    length = par("hair_length")
    fall = (np.abs(x - cx) < rx * vol) & (y > cy) & (y < cy + length * ry)
    hair = np.maximum(hair, fall.astype(np.float32))
    img = paint(img, hair, col("hair"))

    # Head, with a little shading towards the jaw.
    head = ellipse(cx, cy, rx, ry)
    shade = 1 - 0.18 * np.clip((y - cy) / ry, 0, 1)[..., None]
    img = paint(img, head, col("skin") * shade)

    # Fringe: hair covering the top of the head.
    fringe_line = cy - ry * par("fringe") + 0.08 * ry * np.cos((x - cx) / rx * 6)
    fringe = head * (y < fringe_line)
    img = paint(img, fringe, col("hair"))

    eye_y = cy - ry * par("eye_y")
    er = par("eye_r") * rx
    for side in (-1, 1):
        ex = cx + side * par("eye_dx") * rx
        img = paint(img, ellipse(ex, eye_y, er, er * 0.6), np.float32(245))
        img = paint(img, ellipse(ex, eye_y, er * 0.5, er * 0.5), col("eye"))
        img = paint(img, ellipse(ex, eye_y, er * 0.22, er * 0.22), np.float32(10))
        brow_y = eye_y - er * 1.3 + side * par("brow_tilt") * (x - ex)
        brow = ellipse(ex, brow_y, er * 1.1, er * 0.22)
        img = paint(img, brow, col("hair") * 0.8)

    nose = ellipse(cx, cy + par("nose_len") * ry * 0.5, rx * 0.07, par("nose_len") * ry * 0.5)
    img = paint(img, nose * 0.5, col("skin") * 0.7)

    # Mouth: an ellipse bent by a parabola, so it can smile or frown.
    mw = par("mouth_w") * rx
    bend = par("smile") * 0.12 * ry * (1 - ((x - cx) / mw) ** 2)
    my = cy + par("mouth_y") * ry - bend
    mouth = ellipse(cx, my, mw, par("mouth_open") * ry + px)
    img = paint(img, mouth, col("lips"))

    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class DemoImages:
    """The built-in faces as an image set, answering like the decoded-image cache:
    `count`, `size` and `read(indices)` -> uint8 (len(indices), size, size, 3)."""

    def __init__(self, count: int, size: int, seed: int = 0):
        self.images = demo_faces(count, size, seed)
        self.count, self.size = count, size

    def read(self, indices) -> np.ndarray:
        return self.images[np.asarray(indices, np.int64).reshape(-1)]
