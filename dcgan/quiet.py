"""Keep TensorFlow's C++ start-up log lines away from the user.

TensorFlow (through XLA and absl) writes lines such as "cudart_stub.cc:31] Could not
find cuda drivers" and "All log messages before absl::InitializeLog() is called are
written to STDERR" straight to file descriptor 2 while it is imported, before any log
level applies; later C++ info lines ("Compiled cluster using XLA!") obey
TF_CPP_MIN_LOG_LEVEL.  `install()` sets that level (unless the user did) and wraps
TensorFlow's first import, however it happens (`import keras` included): the C++ log
lines written meanwhile are dropped and everything else is written back unchanged, so
real errors and Python warnings still show.

TensorFlow 2.20 (what Colab ships) also writes absl lines later, at the first XLA
compilation ("Compiled cluster using XLA!", after "All log messages before
absl::InitializeLog() ..."), past TF_CPP_MIN_LOG_LEVEL.  `filter_native_stderr()` puts a
filter on file descriptor 2 for the rest of the process: the CLI's is a small forked
process (it outlives a crash, so a crash's last words still get through); a notebook
kernel's is a thread.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import os
import re
import select
import sys
import tempfile
import threading
import time

# absl/glog-style lines ("I0000 00:00:1795441657.641057    2223 cudart_stub.cc:31] ...")
# and the fixed start-up banners TensorFlow prints.
NOISE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [\w./-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: )")


# After the import only INFO and WARNING lines are noise: an ERROR or FATAL line from
# TensorFlow's C++ side is a real failure's words, and reaches the user.
LATE_NOISE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] [\w./-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called)")

# A line that may still become a C++ log line (held back until it ends, at most HOLD_S).
_NOISE_START = re.compile(r"^(?:[IWEF]\d{4} |\d{4}-\d\d-\d\d |WARNING: All log|To enable)")
QUIET_S, HOLD_S = 0.2, 2.0
_filter = None
_stderr_is_terminal = None  # what fd 2 was before the filter took it


def stderr_is_terminal() -> bool:
    """Whether the user's stderr is a terminal (also once the filter sits in between)."""
    return os.isatty(2) if _stderr_is_terminal is None else _stderr_is_terminal


def filter_native_stderr(fork: bool = True) -> None:
    """Drop C++ INFO and WARNING lines written to file descriptor 2 from now on (idempotent).

    Everything else passes through unchanged, progress bars included (a partial line is
    written after QUIET_S without more output).  `fork`: filter in a child process (the
    CLI); else in a thread (a notebook kernel, which must not fork)."""
    global _filter, _stderr_is_terminal
    if _filter is not None or os.name != "posix":
        return
    _stderr_is_terminal = os.isatty(2)
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    original = os.dup(2)
    if fork:
        pid = os.fork()
        if pid == 0:  # the filter: runs until every writer of the pipe has gone
            os.close(write_fd)
            try:
                _pump(read_fd, original)
            finally:
                os._exit(0)
        os.close(read_fd)
        _filter = pid
    else:
        _filter = threading.Thread(target=_pump, args=(read_fd, original), daemon=True,
                                   name="dcgan-stderr-filter")
        _filter.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    atexit.register(_stop_filter, original)


def _stop_filter(original: int) -> None:
    """At exit: give fd 2 back, so the filter sees the end and writes what it holds."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(original, 2)
    if isinstance(_filter, int):
        # The filter ends once every writer is gone; a child process that outlives this
        # one (and still holds the pipe) must not keep it from exiting: wait a little only.
        deadline = time.monotonic() + HOLD_S + 1
        while time.monotonic() < deadline:
            try:
                if os.waitpid(_filter, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break
            time.sleep(0.02)
    elif _filter is not None:
        _filter.join(timeout=HOLD_S)


def _pump(read_fd: int, out_fd: int) -> None:
    """Copy `read_fd` to `out_fd` without the C++ log lines."""
    pending, held_since = b"", None
    while True:
        ready, _, _ = select.select([read_fd], [], [], QUIET_S if pending else None)
        if not ready:  # quiet for a moment: let a partial line (a progress bar) through
            text = pending.decode("utf-8", "replace")
            waited = held_since is not None and time.monotonic() - held_since > HOLD_S
            if not _NOISE_START.match(text) or waited:
                _write(out_fd, pending)
                pending, held_since = b"", None
            elif held_since is None:
                held_since = time.monotonic()
            continue
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        pending += chunk
        *complete, pending = re.split(rb"(?<=[\r\n])", pending)
        _write(out_fd, b"".join(part for part in complete
                                if not LATE_NOISE.match(part.decode("utf-8", "replace"))))
        held_since = None
    if pending and not LATE_NOISE.match(pending.decode("utf-8", "replace")):
        _write(out_fd, pending)


def _write(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def install() -> None:
    """Quiet TensorFlow's C++ logs from here on (idempotent; does nothing once TF is loaded)."""
    # 2: INFO and WARNING hidden; ERROR and FATAL lines (a real failure's words) still reach the user
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
            # Device discovery now, inside the capture: on a machine without a GPU it logs an
            # ERROR line ("failed call to cuInit") that is not one (later ERROR lines show).
            try:
                module.config.list_physical_devices()
            except Exception:  # noqa: BLE001 - a broken device setup shows at first use instead
                pass
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
