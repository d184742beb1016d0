"""dcgan.data.archives: a .zip and a .tar read the same way (what sources and download share)."""

import io
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dcgan.data.archives import BROKEN_ARCHIVE, Archive

FILES = {f"faces/{i:02d}.bin": np.random.default_rng(i).bytes(5000 + 37 * i) for i in range(24)}


def _zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("faces/", "")
        for name, data in FILES.items():
            z.writestr(name, data)
        link = zipfile.ZipInfo("faces/link")
        link.external_attr = (0o120777 << 16)  # a symbolic link, as zip -y stores one
        z.writestr(link, "00.bin")
    return path


def _tar(path):
    with tarfile.open(path, "w:gz") as t:
        folder = tarfile.TarInfo("faces/")
        folder.type = tarfile.DIRTYPE
        t.addfile(folder)
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("faces/link")
        link.type, link.linkname = tarfile.SYMTYPE, "00.bin"
        t.addfile(link)
    return path


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar.gz"])
def test_members_and_reads_are_the_same_for_zip_and_tar(tmp_path, make):
    path = make(tmp_path / ("a.zip" if make is _zip else "a.tar.gz"))
    with Archive(path) as archive:
        kinds = {m.name.rstrip("/"): m.kind for m in archive.members()}
        assert kinds == {"faces": "dir", "faces/link": "link", **{n: "file" for n in FILES}}
        with ThreadPoolExecutor(6) as pool:  # the cache build reads members from threads
            names = list(FILES) * 3
            assert list(pool.map(archive.read, names)) == [FILES[n] for n in names]


def test_a_file_that_is_no_archive_raises_a_broken_archive_error(tmp_path):
    for name in ("x.zip", "x.tar"):
        (tmp_path / name).write_bytes(b"<html>quota exceeded</html>")
        with pytest.raises(BROKEN_ARCHIVE):
            Archive(tmp_path / name)
