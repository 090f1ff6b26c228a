"""Errors whose messages are fit to show a user as they are."""


class SealroomError(Exception):
    """An expected failure: the CLI prints its message on one line and exits 1."""

    exit_code = 1


class DataDirInUse(SealroomError):
    """Another process owns the data directory."""


class UsageError(SealroomError):
    """The command was called wrongly."""

    exit_code = 2


class ModelError(SealroomError):
    """A model file is missing, damaged, not allowed or failed to load."""
