"""Parquet image sets and `hf:ORG/NAME` through the real huggingface_hub client, against a
Hub stand-in on 127.0.0.1 (tests/hub_standin.py); CelebA's token-free chain in the notebook."""

import io
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan.data.cache import open_cache
from dcgan.config import Config
from dcgan.data.pipeline import load_real_images
from dcgan.errors import DataError
from dcgan.data.sources import open_source

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("huggingface_hub")
sys.path.insert(0, str(Path(__file__).parent))
from hub_standin import HubStandIn  # noqa: E402
from test_kaggle import _require_login, kaggle  # noqa: E402, F401  (the Kaggle stand-in fixture)


def _celeba_jpeg(shade: int) -> bytes:
    """An aligned-CelebA-sized face (178x218): `shade` green in the 108 px crop, red outside."""
    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[..., 0] = 255
    pixels[55:163, 35:143] = (0, shade, 0)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _parquet_bytes(cells, column="image", as_struct=True, row_group_size=5) -> bytes:
    """A parquet file as `datasets` writes images ({bytes, path} structs) or plain binary."""
    if as_struct:
        values = [{"bytes": c, "path": f"{i:06d}.jpg"} for i, c in enumerate(cells)]
    else:
        values = list(cells)
    table = pa.table({column: values, "label": list(range(len(cells)))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size)
    return buffer.getvalue()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    faces = [_celeba_jpeg(100 + 10 * i) for i in range(12)]
    faces[4] = b"\xff\xd8 not really a jpeg"  # a broken row: skipped and named
    datasets = {
        "nielsr/CelebA-faces": {"data/train-00000-of-00002.parquet": _parquet_bytes(faces[:7]),
                                "data/train-00001-of-00002.parquet": _parquet_bytes(faces[7:]),
                                "README.md": b"# CelebA"},
        "ada/split-faces": {"data/train-00000-of-00001.parquet": _parquet_bytes(faces[:8]),
                            "data/valid-00000-of-00001.parquet": _parquet_bytes(faces[8:])},
    }
    with HubStandIn(datasets) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield server


def test_hub_dataset_downloads_parquet_only_and_trains_with_celebas_crop(hub, tmp_path):
    source = open_source("hf:nielsr/CelebA-faces")
    assert source.kind == "parquet" and len(source.entries) == 12
    assert source.is_celeba  # 178x218 images: CelebA's face crop applies
    downloads = [r for r in hub.requests if "/resolve/" in r and r.startswith("GET")]
    assert len(downloads) == 2 and not any("README" in r for r in downloads)
    config = Config.from_preset("demo", image_size=16, g_widths=(32, 16), data="hf:nielsr/CelebA-faces",
                                cache_dir=str(tmp_path / "cache"), batch_size=4, epochs=1,
                                steps_per_epoch=2, num_samples=4, out_dir=str(tmp_path / "run"))
    faces = load_real_images(config).astype(int)
    assert faces.shape == (11, 16, 16, 3)  # the broken row skipped
    assert (faces[..., 0] < 60).all() and (faces[..., 1] > 80).all()  # only the green crop window
    skipped = open_cache(open_source(config.data), 16, 108, tmp_path / "cache").meta["skipped"]
    assert [name for name, _ in skipped] == ["hf:nielsr/CelebA-faces:train-00000-of-00002.parquet#4"]
    asked = len(hub.requests)
    open_source("hf:nielsr/CelebA-faces")  # a second look: metadata only, no file again
    assert not [r for r in hub.requests[asked:] if "/resolve/" in r and r.startswith("GET")]
    from dcgan.training.loop import train

    _, history = train(config, progress=False)
    assert len(history.history["d_loss"]) == 1


def test_hub_split_picks_the_splits_files(hub):
    assert len(open_source("hf:ada/split-faces", split="valid").entries) == 4
    assert len(open_source("hf:ada/split-faces", split="train").entries) == 8
    with pytest.raises(DataError, match=r"no parquet files for split=test .*use split=all"):
        open_source("hf:ada/split-faces", split="test")


@pytest.mark.parametrize("spec, message", [
    ("hf:ada/nothing-here", r"^hf:ada/nothing-here: no such public dataset on the Hugging Face Hub"),
    ("hf:not-a-repo-id", r"^hf:not-a-repo-id: expected hf:ORG/NAME"),
])
def test_bad_hub_ids_are_one_line(hub, spec, message):
    with pytest.raises(DataError, match=message) as error:
        open_source(spec)
    assert "\n" not in str(error.value)


def test_an_unreachable_hub_is_one_line(monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(DataError, match=r"^hf:ada/faces: the Hugging Face Hub could not be reached"
                                        r" .*run again") as error:
        open_source("hf:ada/faces")
    assert "\n" not in str(error.value)


def test_local_parquet_files_and_folders_with_either_image_column(tmp_path):
    cells = [_celeba_jpeg(200)] * 3
    (tmp_path / "a.parquet").write_bytes(_parquet_bytes(cells, column="img", as_struct=False))
    source = open_source(str(tmp_path / "a.parquet"))
    assert source.kind == "parquet" and len(source.entries) == 3 and source.is_celeba
    folder = tmp_path / "shards"
    folder.mkdir()
    for i in range(2):
        (folder / f"train-{i:05d}-of-00002.parquet").write_bytes(_parquet_bytes(cells))
    assert len(open_source(str(folder)).entries) == 6
    small = io.BytesIO()
    Image.fromarray(np.full((40, 30, 3), 9, np.uint8)).save(small, format="PNG")
    (tmp_path / "small.parquet").write_bytes(_parquet_bytes([small.getvalue()] * 2))
    assert not open_source(str(tmp_path / "small.parquet")).is_celeba  # not CelebA-sized: no crop


def test_bad_parquet_files_are_one_line_each(tmp_path):
    table = pa.table({"caption": ["a face", "another"], "label": [1, 2]})
    pq.write_table(table, tmp_path / "text.parquet")
    with pytest.raises(DataError, match=r"text.parquet: no image column .*its columns: caption"):
        open_source(str(tmp_path / "text.parquet"))
    good = _parquet_bytes([_celeba_jpeg(100)] * 4)
    (tmp_path / "cut.parquet").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(DataError, match=r"cut.parquet: not a readable parquet file .*download it again"):
        open_source(str(tmp_path / "cut.parquet"))


def test_an_html_page_saved_as_the_archive_is_named(tmp_path):
    page = tmp_path / "img_align_celeba.zip"
    page.write_text("<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title>")
    with pytest.raises(DataError, match=r"a web page \(HTML\), not an archive") as error:
        open_source(str(page))
    assert "\n" not in str(error.value)


def test_celeba_in_the_notebook_tries_kaggle_then_the_hub(kaggle, hub, capsys,  # noqa: F811
                                                          monkeypatch, tmp_path):
    from dcgan.apps import notebook as nb

    monkeypatch.chdir(tmp_path)  # the Kaggle download's folder, data/celeba, is relative

    _require_login(kaggle)  # Kaggle says 401: no token here
    assert nb.prepare_data("celeba", "seed128") == "hf:nielsr/CelebA-faces"
    out = capsys.readouterr().out
    assert "non-commercial research" in out and "KAGGLE_API_TOKEN" in out
    assert "hf:nielsr/CelebA-faces" in out
    asked = (len(kaggle["calls"]), len(hub.requests))
    assert nb.prepare_data("celeba", "seed128") == "hf:nielsr/CelebA-faces"  # the cell re-run
    assert (len(kaggle["calls"]), len(hub.requests)) == asked  # nobody asked again
    assert "non-commercial" not in capsys.readouterr().out  # the licence is shown once


def test_celeba_never_falls_back_to_the_demo_faces_except_for_the_demo(kaggle, monkeypatch,  # noqa: F811
                                                                       tmp_path):
    from dcgan.apps import notebook as nb

    monkeypatch.chdir(tmp_path)
    _require_login(kaggle)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{s.getsockname()[1]}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(DataError, match=r"^CelebA could not be fetched \(Kaggle: .*; Hub: .*\);"
                                        r" add the KAGGLE_API_TOKEN secret") as error:
        nb.prepare_data("celeba", "seed128")
    assert "\n" not in str(error.value)
    assert nb.prepare_data("celeba", "demo") == "demo"
