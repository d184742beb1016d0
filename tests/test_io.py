"""Atomic writes leave files as a plain open() would: the user's umask, or an existing file's mode."""

import os
import stat
from pathlib import Path

import pytest

from dcgan.io import atomic_write_text, current_umask


@pytest.fixture
def umask():
    def set_mask(mask):
        os.umask(mask)
    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_follow_the_umask_and_old_ones_keep_their_mode(tmp_path, umask):
    umask(0o022)
    assert current_umask() == 0o022
    atomic_write_text(tmp_path / "a.json", "{}")
    assert _mode(tmp_path / "a.json") == 0o644
    umask(0o027)
    atomic_write_text(tmp_path / "b.json", "{}")
    assert _mode(tmp_path / "b.json") == 0o640
    (tmp_path / "a.json").chmod(0o600)  # the user's choice for an existing file stays
    atomic_write_text(tmp_path / "a.json", "{1}")
    assert _mode(tmp_path / "a.json") == 0o600 and (tmp_path / "a.json").read_text() == "{1}"


def test_every_file_of_a_run_is_readable_by_the_group_under_umask_022(tiny_demo, umask):
    from dcgan.training.loop import train

    umask(0o022)
    train(tiny_demo.replace(epochs=2))
    files = [p for p in Path(tiny_demo.out_dir).rglob("*")
             if p.is_file()]
    assert len(files) > 10
    modes = {str(p.relative_to(tiny_demo.out_dir)): oct(_mode(p)) for p in files}
    assert {name: mode for name, mode in modes.items() if mode != "0o644"} == {}
