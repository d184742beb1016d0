"""The standard FID network: its weights file, the hash check, and its wiring against pytorch-fid."""

import functools
import hashlib
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from dcgan.errors import DataError
from dcgan.evaluation.inception import (FID_WEIGHTS_SHA256, FeatureNetwork, feature_network, fid_inception,
                             fid_weights_file, load_fid_weights)
from dcgan.evaluation.pth import load_state_dict

ROOT = Path(__file__).resolve().parents[1]
HAVE_REFERENCE = all(importlib.util.find_spec(m) for m in ("torch", "torchvision", "pytorch_fid"))
needs_reference = pytest.mark.skipif(not HAVE_REFERENCE, reason="torch and pytorch-fid not installed")

# torch runs in a subprocess, imported before TensorFlow: the two in one process can crash
# (torch's triton import segfaults once TensorFlow is loaded).
REFERENCE = r'''
import sys
import numpy as np, torch
from pytorch_fid import inception as pf

out = sys.argv[1]
torch.manual_seed(0)
g = torch.Generator().manual_seed(1)
net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
state = net.state_dict()
for name, value in state.items():  # random weights and BatchNorm statistics, all used
    if name.endswith("running_mean"): value.copy_(torch.randn(value.shape, generator=g) * 0.1)
    elif name.endswith("running_var"): value.copy_(torch.rand(value.shape, generator=g) + 0.5)
    elif name.endswith("bn.weight"): value.copy_(torch.rand(value.shape, generator=g) + 0.5)
    elif name.endswith("bn.bias"): value.copy_(torch.randn(value.shape, generator=g) * 0.1)
    elif name.endswith("conv.weight"):
        value.copy_(torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5)
# The official file is in torch's legacy format; write that one (and a zip one for the reader).
torch.save(state, out + "/fid.pth", _use_new_zipfile_serialization=False)
odd = {"a": torch.randn(5, 6).t(), "b": torch.arange(10)[2:7], "c": torch.tensor(3.5).half()}
torch.save(odd, out + "/odd_zip.pth")
torch.save(odd, out + "/odd_legacy.pth", _use_new_zipfile_serialization=False)
np.savez(out + "/odd.npz", **{k: v.numpy() for k, v in odd.items()})
# pytorch-fid's own network with these weights (its download replaced by the file above).
pf.load_state_dict_from_url = lambda *args, **kwargs: torch.load(out + "/fid.pth")
reference = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
images = np.random.default_rng(0).integers(0, 256, (3, 70, 52, 3), dtype=np.uint8)
with torch.no_grad():
    features = reference(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)[0]
np.savez(out + "/reference.npz", images=images, features=features.reshape(3, -1).numpy())
'''


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fid-reference")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", REFERENCE, str(folder)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@needs_reference
def test_state_dicts_in_both_torch_formats_read_without_torch(reference):
    expected = np.load(reference / "odd.npz")
    for name in ("odd_zip.pth", "odd_legacy.pth"):
        got = load_state_dict(reference / name)
        assert sorted(got) == ["a", "b", "c"]
        for key in got:
            assert got[key].dtype == expected[key].dtype and got[key].shape == expected[key].shape
            np.testing.assert_array_equal(got[key], expected[key])


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(ValueError, match="not part of a plain state dict"):
        load_state_dict(tmp_path / "evil.pth")


def _crafted_state_dict(path, offset, size, stride, numel=4):
    """A zip-format .pth whose one tensor claims `offset`, `size` and `stride` over a storage
    of `numel` floats, written without torch (its pickle names torch's globals)."""
    import pickle
    import types
    import zipfile
    from collections import OrderedDict

    utils, torch_like = types.ModuleType("fake_torch_utils"), types.ModuleType("fake_torch")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called here")

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, FloatStorage.__module__ = utils.__name__, torch_like.__name__
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = "FloatStorage", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2, torch_like.FloatStorage = _rebuild_tensor_v2, FloatStorage
    storage = object()

    class Tensor:
        def __reduce__(self):
            return (_rebuild_tensor_v2, (storage, offset, size, stride, False, OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", numel) if obj is storage else None

    buffer = __import__("io").BytesIO()
    sys.modules.update({utils.__name__: utils, torch_like.__name__: torch_like})
    try:
        Pickler(buffer, protocol=2).dump(OrderedDict(w=Tensor()))
    finally:
        del sys.modules[utils.__name__], sys.modules[torch_like.__name__]
    pickled = buffer.getvalue().replace(b"fake_torch_utils\n", b"torch._utils\n").replace(
        b"fake_torch\n", b"torch\n")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", np.arange(numel, dtype="<f4").tobytes())


def test_a_tensor_reaching_outside_its_storage_is_refused(tmp_path):
    good = tmp_path / "good.pth"
    _crafted_state_dict(good, 1, (3,), (1,))  # the reader itself, on a well-formed file
    np.testing.assert_array_equal(load_state_dict(good)["w"], [1, 2, 3])
    for offset, size, stride in [(0, (1_000_000,), (1,)), (3, (2,), (1,)), (0, (2, 2), (4, 1)),
                                 (-1, (2,), (1,)), (0, (2,), (-1,))]:
        _crafted_state_dict(tmp_path / "bad.pth", offset, size, stride)
        with pytest.raises(ValueError, match="not a PyTorch state dict"):
            load_state_dict(tmp_path / "bad.pth")


@needs_reference
def test_the_keras_fid_network_matches_pytorch_fid(reference):
    model = fid_inception()
    load_fid_weights(model, reference / "fid.pth")
    data = np.load(reference / "reference.npz")
    network = FeatureNetwork(model, "test", True)
    features = network.features(data["images"], batch_size=2)
    assert features.shape == (3, 2048) and features.dtype == np.float64
    # Same resize (bilinear, no antialias, to 299), scaling to [-1, 1], layers and pools.
    np.testing.assert_allclose(features, data["features"], rtol=1e-4,
                               atol=1e-4 * np.abs(data["features"]).max())


def test_weights_that_are_not_the_fid_networks_are_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(DataError, match="not the FID Inception weights"):
        load_fid_weights(fid_inception(), tmp_path / "x.npy")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()


def test_the_weights_download_is_hash_checked_loudly_and_leaves_nothing(server, tmp_path):
    served, url, _ = server
    (served / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"not the real weights" * 100)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as err:
        fid_weights_file(f"{url}/pt_inception-2015-12-05-6726825d.pth", cache_dir=cache)
    message = str(err.value)
    assert "\n" not in message and FID_WEIGHTS_SHA256 in message and "FID weights" in message
    assert list(cache.iterdir()) == []  # neither the bad file nor a partial stays
    # A local copy with the wrong bytes is refused the same way.
    with pytest.raises(DataError, match=FID_WEIGHTS_SHA256):
        feature_network("fid", str(served / "pt_inception-2015-12-05-6726825d.pth"), cache_dir=cache)


def test_the_weights_are_fetched_once_then_used_offline(server, tmp_path):
    served, url, httpd = server
    payload = b"weights" * 1000
    (served / "w.pth").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    first = fid_weights_file(f"{url}/w.pth", sha256=digest, cache_dir=tmp_path / "cache")
    assert first.read_bytes() == payload and first.parent == tmp_path / "cache"
    httpd.shutdown()  # offline from here on
    assert fid_weights_file(f"{url}/w.pth", sha256=digest, cache_dir=tmp_path / "cache") == first


def test_every_fid_names_its_network(tmp_path):
    from dcgan.evaluation.scoring import summary
    from dcgan.evaluation.scoring import evaluate_images

    faces = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    results = evaluate_images(faces[:4], faces[4:], metrics=("fid",), inception_weights="untrained")
    assert results["fid_network"].startswith("FID Inception (untrained)")
    assert results["fid_comparable"] is False
    assert "FID/KID by FID Inception (untrained): not a score" in summary(results)
