"""The suite's own rules, as CI applies them: a skip not on the allow-list fails the run."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest(tmp_path, reason):
    (tmp_path / "test_one.py").write_text(
        f"import pytest\n\ndef test_it():\n    pytest.skip({reason!r})\n")
    env = dict(os.environ, DCGAN_STRICT_SKIPS="1", PYTHONPATH=f"{ROOT / 'tests'}:{ROOT}")
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID",
                 "DCGAN_COLAB_LEG"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_one.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_a_skip_that_is_not_allowed_fails_the_run(tmp_path):
    result = _pytest(tmp_path, "the network is down")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "skips not on tests/conftest.py's ALLOWED_SKIPS" in result.stdout
    assert "the network is down" in result.stdout


def test_an_allowed_skip_passes(tmp_path):
    result = _pytest(tmp_path, "no Chromium and chromedriver here (apt install chromium)")
    assert result.returncode == 0, result.stdout[-2000:]
