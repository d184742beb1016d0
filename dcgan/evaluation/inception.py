"""The Inception networks that FID and KID are measured with.

`fid` (the default) is the standard FID network: the 2015-12-05 TensorFlow Inception
graph of Heusel et al.'s TTUR code, as pytorch-fid (and clean-fid, torch-fidelity)
load it from `pt_inception-2015-12-05-6726825d.pth`.  Published FIDs (CelebA DCGAN
12.5, ...) come from this network.  Here it is rebuilt from Keras layers, so it runs
on every Keras backend, with the file's weights read without torch (`dcgan.evaluation.pth`); its
quirks are kept: average pools that ignore padding, a max pool in the last block,
bilinear resizing to 299x299 without antialiasing, inputs scaled to [-1, 1].  The file
is downloaded once, checked against its sha256, and kept in the Keras cache
(`~/.keras/models`, or `$KERAS_HOME/models`); after that it works offline.

`keras` is `keras.applications.InceptionV3` with ImageNet weights: other weights and
other preprocessing, so its FIDs are NOT comparable with published values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from dcgan.data.download import fetch
from dcgan.env import show_progress
from dcgan.errors import DataError
from dcgan.evaluation.metrics import FID_NETWORKS
from dcgan.evaluation.pth import load_state_dict

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
UNTRAINED = "untrained"  # random weights: offline smoke tests of the pipeline only
_BN_EPSILON = 0.001  # torchvision's BasicConv2d, as in the TensorFlow graph


@dataclass
class FeatureNetwork:
    """A network that maps uint8 images to 2048-d pool features, and how to describe it."""

    model: keras.Model
    name: str  # what scored the numbers, written beside every FID/KID
    comparable: bool  # whether FIDs from it compare with published ones

    def features(self, images: np.ndarray, batch_size: int = 50, label: str = "") -> np.ndarray:
        """2048-d features of uint8 images (n, h, w, 3), as float64; a progress bar named
        `label` where a person watches (minutes for 10k images on a CPU)."""
        from tqdm.auto import tqdm

        out = []
        starts = range(0, len(images), batch_size)
        bar = show_progress() and len(starts) > 1
        for start in (tqdm(starts, desc=f"{self.name} features{', ' + label if label else ''}",
                           unit="batch", leave=False) if bar else starts):
            batch = np.asarray(images[start:start + batch_size], np.float32)
            out.append(keras.ops.convert_to_numpy(self.model(batch, training=False)))
        if not out:
            return np.zeros((0, 2048))
        return np.concatenate(out).astype(np.float64)


def feature_network(network: str = "fid", weights: str | None = None,
                    cache_dir: str | Path | None = None) -> FeatureNetwork:
    """The network FID/KID use: `fid` (standard) or `keras` (ImageNet InceptionV3).

    `weights`: for `fid`, a local copy or a URL of the .pth (default: the official
    download, cached); "untrained" for random weights (smoke tests, not a score).
    """
    if network not in FID_NETWORKS:
        raise DataError(f"--fid-network {network}: choose one of {', '.join(FID_NETWORKS)}")
    if network == "keras":
        untrained = weights == UNTRAINED
        model = keras.Sequential([
            keras.Input((None, None, 3)),
            layers.Resizing(299, 299, interpolation="bilinear", antialias=True),
            layers.Rescaling(1 / 127.5, offset=-1.0),  # keras' inception_v3.preprocess_input
            keras.applications.InceptionV3(include_top=False, pooling="avg",
                                           weights=None if untrained else "imagenet",
                                           input_shape=(299, 299, 3))])
        name = "Keras InceptionV3 " + ("(untrained)" if untrained else "(ImageNet weights)")
        return FeatureNetwork(model, name + ": not comparable with published FIDs", False)
    model = fid_inception()
    if weights == UNTRAINED:
        return FeatureNetwork(model, "FID Inception (untrained): not a score", False)
    load_fid_weights(model, fid_weights_file(weights, cache_dir=cache_dir))
    return FeatureNetwork(model, "FID Inception (pt_inception-2015-12-05, as TTUR/pytorch-fid)", True)


def fid_weights_file(source: str | None = None, sha256: str | None = FID_WEIGHTS_SHA256,
                     cache_dir: str | Path | None = None) -> Path:
    """The standard FID weights on disk: `source` (a path or URL; default the official URL),
    downloaded once into the Keras cache and checked against `sha256`."""
    folder = Path(cache_dir) if cache_dir else _keras_cache()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return fetch(source or FID_WEIGHTS_URL, folder, sha256=sha256, progress=show_progress())
    except DataError as e:
        raise DataError(f"FID weights: {e}; FID/KID need the standard network's weights "
                        "(or --fid-network keras, whose values are not comparable with "
                        "published ones)") from None


def _keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def load_fid_weights(model: keras.Model, path: str | Path) -> None:
    """Copy a pytorch-fid state dict into `fid_inception()`'s layers (named as its modules)."""
    try:
        state = load_state_dict(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not the FID Inception weights ({e})") from None
    used = set()
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            names = [f"{layer.name}.weight"]
            values = [_take(state, names[0], path).transpose(2, 3, 1, 0)]  # OIHW -> HWIO
        elif isinstance(layer, layers.BatchNormalization):
            names = [f"{layer.name}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]
            values = [_take(state, n, path) for n in names]
        else:
            continue
        try:
            layer.set_weights(values)
        except ValueError as e:
            raise DataError(f"{path}: not the FID Inception weights ({layer.name}: {e})") from None
        used.update(names)
    unused = [k for k in state if k not in used and not k.startswith("fc.")
              and not k.endswith("num_batches_tracked")]
    if unused:
        raise DataError(f"{path}: not the FID Inception weights (unexpected {', '.join(unused[:3])})")


def _take(state: dict, name: str, path) -> np.ndarray:
    if name not in state:
        raise DataError(f"{path}: not the FID Inception weights (no {name})")
    return state[name]


# ------------------------------------------------------------------ the network
def fid_inception() -> keras.Model:
    """The FID Inception (pytorch-fid's InceptionV3 up to the 2048-d pool), untrained.

    Input: images in [0, 255], any size; layers are named after pytorch-fid's modules.
    """
    image = keras.Input((None, None, 3), name="image")
    x = layers.Resizing(299, 299, interpolation="bilinear", antialias=False, name="resize")(image)
    x = layers.Rescaling(2 / 255, offset=-1.0, name="to_unit")(x)  # pytorch-fid: 2 * (x / 255) - 1
    x = _conv(x, "Conv2d_1a_3x3", 32, 3, strides=2, padding="valid")
    x = _conv(x, "Conv2d_2a_3x3", 32, 3, padding="valid")
    x = _conv(x, "Conv2d_2b_3x3", 64, 3)
    x = layers.MaxPooling2D(3, 2, name="maxpool1")(x)
    x = _conv(x, "Conv2d_3b_1x1", 80, 1)
    x = _conv(x, "Conv2d_4a_3x3", 192, 3, padding="valid")
    x = layers.MaxPooling2D(3, 2, name="maxpool2")(x)
    for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
        x = _block_a(x, name, pool_features)
    x = _block_b(x, "Mixed_6a")
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        x = _block_c(x, name, c7)
    x = _block_d(x, "Mixed_7a")
    x = _block_e(x, "Mixed_7b", max_pool=False)
    x = _block_e(x, "Mixed_7c", max_pool=True)  # the FID graph's quirk: a max pool here
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(image, features, name="fid_inception")


def _conv(x, name, filters, kernel, strides=1, padding="same"):
    """torchvision's BasicConv2d: conv without bias, BatchNorm (eps 0.001), ReLU."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                      name=f"{name}.conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=f"{name}.bn")(x)
    return layers.ReLU()(x)


def _avg_pool(x):
    # 3x3, stride 1, "same": Keras leaves the padding out of the average on every backend,
    # as TensorFlow's graph does (pytorch-fid: count_include_pad=False).
    return layers.AveragePooling2D(3, 1, padding="same")(x)


def _block_a(x, n, pool_features):
    b1 = _conv(x, f"{n}.branch1x1", 64, 1)
    b5 = _conv(_conv(x, f"{n}.branch5x5_1", 48, 1), f"{n}.branch5x5_2", 64, 5)
    b3 = _conv(x, f"{n}.branch3x3dbl_1", 64, 1)
    b3 = _conv(_conv(b3, f"{n}.branch3x3dbl_2", 96, 3), f"{n}.branch3x3dbl_3", 96, 3)
    bp = _conv(_avg_pool(x), f"{n}.branch_pool", pool_features, 1)
    return layers.Concatenate(name=n)([b1, b5, b3, bp])


def _block_b(x, n):
    b3 = _conv(x, f"{n}.branch3x3", 384, 3, strides=2, padding="valid")
    bd = _conv(_conv(x, f"{n}.branch3x3dbl_1", 64, 1), f"{n}.branch3x3dbl_2", 96, 3)
    bd = _conv(bd, f"{n}.branch3x3dbl_3", 96, 3, strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, 2)(x)
    return layers.Concatenate(name=n)([b3, bd, bp])


def _block_c(x, n, c7):
    b1 = _conv(x, f"{n}.branch1x1", 192, 1)
    b7 = _conv(x, f"{n}.branch7x7_1", c7, 1)
    b7 = _conv(_conv(b7, f"{n}.branch7x7_2", c7, (1, 7)), f"{n}.branch7x7_3", 192, (7, 1))
    bd = _conv(x, f"{n}.branch7x7dbl_1", c7, 1)
    for i, (width, kernel) in enumerate(((c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)), (192, (1, 7))), 2):
        bd = _conv(bd, f"{n}.branch7x7dbl_{i}", width, kernel)
    bp = _conv(_avg_pool(x), f"{n}.branch_pool", 192, 1)
    return layers.Concatenate(name=n)([b1, b7, bd, bp])


def _block_d(x, n):
    b3 = _conv(_conv(x, f"{n}.branch3x3_1", 192, 1), f"{n}.branch3x3_2", 320, 3, strides=2,
               padding="valid")
    b7 = _conv(x, f"{n}.branch7x7x3_1", 192, 1)
    b7 = _conv(_conv(b7, f"{n}.branch7x7x3_2", 192, (1, 7)), f"{n}.branch7x7x3_3", 192, (7, 1))
    b7 = _conv(b7, f"{n}.branch7x7x3_4", 192, 3, strides=2, padding="valid")
    bp = layers.MaxPooling2D(3, 2)(x)
    return layers.Concatenate(name=n)([b3, b7, bp])


def _block_e(x, n, max_pool):
    b1 = _conv(x, f"{n}.branch1x1", 320, 1)
    b3 = _conv(x, f"{n}.branch3x3_1", 384, 1)
    b3 = layers.Concatenate()([_conv(b3, f"{n}.branch3x3_2a", 384, (1, 3)),
                               _conv(b3, f"{n}.branch3x3_2b", 384, (3, 1))])
    bd = _conv(_conv(x, f"{n}.branch3x3dbl_1", 448, 1), f"{n}.branch3x3dbl_2", 384, 3)
    bd = layers.Concatenate()([_conv(bd, f"{n}.branch3x3dbl_3a", 384, (1, 3)),
                               _conv(bd, f"{n}.branch3x3dbl_3b", 384, (3, 1))])
    pooled = layers.MaxPooling2D(3, 1, padding="same")(x) if max_pool else _avg_pool(x)
    bp = _conv(pooled, f"{n}.branch_pool", 192, 1)
    return layers.Concatenate(name=n)([b1, b3, bd, bp])
