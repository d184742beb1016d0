"""The package version (one place: pyproject.toml reads it, checkpoints record it)."""

__version__ = "0.9.0"
