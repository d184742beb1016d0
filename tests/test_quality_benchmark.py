"""benchmarks/quality.py's real-photo table: real faces from inside a package, one row per recipe
with SWD beside the real-vs-real floor, a diversity ratio and a grid."""

import argparse
import importlib.util
import re
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _quality_module():
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lfw_faces_are_the_hundred_real_faces(tmp_path):
    quality = _quality_module()
    folder = Path(quality.lfw_folder(tmp_path / "lfw"))
    files = sorted(folder.glob("*.png"))
    assert len(files) == 100
    faces = np.stack([np.asarray(Image.open(f)) for f in files])
    assert faces.shape == (100, 25, 25, 3) and faces.std() > 20
    assert (faces[..., 0] == faces[..., 2]).all()  # grey, as scikit-image ships them


def test_the_real_face_table_has_a_row_and_a_grid_per_recipe(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "cache"))
    quality = _quality_module()
    args = argparse.Namespace(data="lfw", sizes="32", images=64, batch_size=32,
                              recipes="faces64,demo", out=str(tmp_path / "out"))
    quality.real_faces(args)
    real, *rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 32 |")]
    assert real.split("|")[2].strip() == "(real faces)"
    assert 0 <= float(real.split("|")[10]) < 5  # real faces: little energy at the 2-pixel period
    assert [row.split("|")[2].strip() for row in rows] == ["faces64", "demo"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        seen, ema, raw, floor, ratio, diversity, checkerboard = (
            float(c) for c in cells[2:3] + cells[4:10])
        assert seen == 64 and floor > 0 and ema > floor  # 64 images seen: far from the floor
        assert abs(ratio - ema / floor) < 0.01
        assert 0 <= diversity < 2 and raw > 0 and 0 <= checkerboard <= 100
        grid = np.asarray(Image.open(cells[10]))
        assert grid.shape[0] == grid.shape[1] == 8 * (32 + 2) + 2  # 64 faces, 8 x 8
    assert re.search(r"lfw_32_faces64\.png", rows[0])
