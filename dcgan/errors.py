"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class DcganError(Exception):
    """A problem the user can fix: bad input, a missing file, a bad value."""


class ConfigError(DcganError, ValueError):
    """A configuration value is invalid; the message names the field."""


class DataError(DcganError):
    """A data source is missing, empty or unreadable; the message names it."""


class CheckpointError(DcganError):
    """A checkpoint or run folder is missing or unusable; the message names it."""


class TrainingDiverged(DcganError):
    """Losses or weights became NaN/inf; the message names the step and the last good checkpoint."""
