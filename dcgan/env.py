"""Where we are running: a notebook kernel (Jupyter, Colab) or a terminal."""

from __future__ import annotations

import sys


def in_notebook() -> bool:
    """True inside a Jupyter/Colab kernel (grids are then also shown inline)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    return type(shell).__name__ in ("ZMQInteractiveShell", "Shell")


def show_progress() -> bool:
    """Progress bars only where a person watches: a terminal or a notebook, not a CI log."""
    return sys.stderr.isatty() or in_notebook()
