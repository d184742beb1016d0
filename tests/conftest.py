"""Shared fixtures: tiny configurations so every test runs in seconds on a CPU."""

import os
import re
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one thread pool each, so they do not fight over the cores
    # (set before TensorFlow, JAX or torch start their pools).
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import pytest  # noqa: E402

from dcgan.config import Config  # noqa: E402  (dcgan first: it quiets TensorFlow's start-up lines)

import keras  # noqa: E402

# XLA compiles for seconds before a run of a few steps: off in the tiny fixtures (tests about
# XLA turn it on), except on JAX, whose eager mode is slower than compiling.
TINY_JIT = "auto" if keras.backend.backend() == "jax" else "false"

# The long legs first, one per worker: xdist's worksteal scheduler gives the first worker the
# first half of the collection and the second the rest, so the JAX leg opens the first half
# and the PyTorch leg the second.
LONG_LEGS = ("test_marked_tests_pass_on[jax]", "test_marked_tests_pass_on[torch]")

# Skips CI accepts (reason patterns); any other skip fails a run with DCGAN_STRICT_SKIPS=1
# (`make test`): a test that cannot run here has not shown anything.
ALLOWED_SKIPS = (
    r"no Chromium and chromedriver here",  # the browser test, where apt could not install them
    r"TensorFlow's CPU convolutions are channels-last only",
)
if os.environ.get("DCGAN_COLAB_LEG") == "1":  # Colab's runtime has no JAX, torch, selenium
    ALLOWED_SKIPS += (r"could not import '(jax|torch|torchvision|pytorch_fid|selenium[\w.]*|tensorboard)'",)


@pytest.fixture
def tiny_demo(tmp_path):
    """The demo preset shrunk to 16x16 images and narrow layers, without its R1 penalty (which
    test_r1_ada.py tests on every backend, and test_learning.py in the preset)."""
    return Config.from_preset("demo", image_size=16, g_widths=(32, 16), batch_size=16, r1_gamma=0.0,
                              demo_images=256, epochs=1, num_samples=16, jit_compile=TINY_JIT,
                              out_dir=str(tmp_path / "run"))


@pytest.fixture
def tiny_seed(tmp_path):
    """The seed architecture (the seed128 layer stack) at 32x32 with narrow layers."""
    return Config.from_preset("seed128", image_size=32, seed_channels=8, g_transpose_widths=(8, 8, 8, 8),
                              g_conv_widths=(8, 8), d_widths=(8, 8, 8, 8, 8), batch_size=8,
                              demo_images=64, epochs=1, num_samples=4, jit_compile=TINY_JIT,
                              out_dir=str(tmp_path / "run"))


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory):
    """One finished run of the tiny demo config (2 epochs), trained once per test process: tests
    that only need a run folder copy it (`shutil.copytree`) instead of training their own."""
    from dcgan.training.loop import train

    run = tmp_path_factory.mktemp("session-run") / "run"
    config = Config.from_preset("demo", image_size=16, g_widths=(32, 16), batch_size=16, r1_gamma=0.0,
                                demo_images=64, epochs=2, num_samples=16, jit_compile=TINY_JIT,
                                out_dir=str(run))
    train(config, progress=False)
    return run


@pytest.fixture
def tiny_run(trained_tiny_run, tmp_path):
    """A copy of `trained_tiny_run` of this test's own, to change as it likes."""
    import shutil

    return Path(shutil.copytree(trained_tiny_run, tmp_path / "run"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Decoded-image caches go to a temporary folder, never the user's ~/.cache."""
    os.environ["DCGAN_CACHE"] = str(tmp_path_factory.mktemp("dcgan-cache"))


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the system's openssl), so that https
    downloads are tested against a real TLS server on this machine."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to test https downloads (apt install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def https_server(tls_certificate, monkeypatch):
    """serve(directory, handler=None) -> the https URL of `directory`, served on 127.0.0.1 with
    the test certificate, which this process (and its subprocesses) then trust."""
    import functools
    import http.server
    import ssl
    import threading

    cert, key = tls_certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    servers = []

    def serve(directory, handler=http.server.SimpleHTTPRequestHandler):
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"https://127.0.0.1:{httpd.server_address[1]}"

    yield serve
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def pytest_collection_modifyitems(config, items):
    legs = [item for name in LONG_LEGS for item in items if item.name == name]
    if len(legs) == 2:
        rest = [item for item in items if item not in legs]
        half = len(items) // 2
        items[:] = [legs[0], *rest[:half - 1], legs[1], *rest[half - 1:]]


_skips: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skips.append((report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("DCGAN_STRICT_SKIPS") != "1" or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    unexpected = [(test, why) for test, why in _skips
                  if not any(re.search(allowed, why) for allowed in ALLOWED_SKIPS)]
    if unexpected:
        lines = "\n".join(f"  {test}: {why}" for test, why in unexpected)
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"skips not on tests/conftest.py's ALLOWED_SKIPS (a skipped test shows nothing):\n{lines}")
        session.exitstatus = 1


@pytest.fixture
def cli(monkeypatch, capsys):
    """cli(*args, cwd) -> (returncode, stdout, stderr) of `python -m dcgan ARGS` run in this
    process: argument and input errors need no new Python (a few real subprocesses below keep
    the promises about what reaches a terminal)."""
    import logging
    import subprocess

    from dcgan.apps import cli as module

    monkeypatch.setattr(module.quiet, "filter_native_stderr", lambda: None)  # no fork in pytest
    logger = logging.getLogger("dcgan")
    saved = logger.handlers[:], logger.propagate, logger.level

    def run(*args, cwd):
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            code = module.main(list(args))
        except SystemExit as e:  # argparse: --help, and its own errors
            code = e.code
        finally:
            logger.handlers[:], logger.propagate = saved[0], saved[1]
            logger.setLevel(saved[2])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def assert_one_line_error(result, *words):
    assert result.returncode == 2, (result.returncode, result.stderr)  # the README's promise
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
