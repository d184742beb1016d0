"""Keep TensorFlow's C++ start-up log lines away from the user.

TensorFlow (through XLA and absl) writes lines such as "cudart_stub.cc:31] Could not
find cuda drivers" and "All log messages before absl::InitializeLog() is called are
written to STDERR" straight to file descriptor 2 while it is imported, before any log
level applies; later C++ info lines ("Compiled cluster using XLA!") obey
TF_CPP_MIN_LOG_LEVEL.  `install()` sets that level (unless the user did) and wraps
TensorFlow's first import, however it happens (`import keras` included): the C++ log
lines written meanwhile are dropped and everything else is written back unchanged, so
real errors and Python warnings still show.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# absl/glog-style lines ("I0000 00:00:1795441657.641057    2223 cudart_stub.cc:31] ...")
# and the fixed start-up banners TensorFlow prints.
NOISE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [\w./-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: )")


def install() -> None:
    """Quiet TensorFlow's C++ logs from here on (idempotent; does nothing once TF is loaded)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietImport())


def filter_noise(text: str) -> str:
    """`text` without the C++ log lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.match(line))


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow`, wrapping its loader so its import runs with fd 2 captured.

    It stays on sys.meta_path until TensorFlow is really imported: libraries often only
    ask whether it is installed (`find_spec`), which executes nothing."""

    looking = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow" or self.looking:
            return None
        self.looking = True  # the look-up below goes through sys.meta_path again
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.looking = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, finder):
        self.loader, self.finder = loader, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)  # TensorFlow is imported once
        with _Stderr2Captured() as captured:
            self.loader.exec_module(module)
        captured.replay()

    def __getattr__(self, name):  # everything else (get_code, is_package, ...) as the original
        return getattr(self.loader, name)


class _Stderr2Captured:
    """Redirect file descriptor 2 into a temporary file; on exit restore it, and on an error
    write everything captured back at once so nothing of a failure is lost."""

    def __enter__(self):
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, kind, error, trace):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read().decode("utf-8", "replace")
        self.file.close()
        if kind is not None:
            sys.stderr.write(self.text)
        return False

    def replay(self):
        rest = filter_noise(self.text)
        if rest:
            sys.stderr.write(rest)
            sys.stderr.flush()
