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


class DiskFull(SealroomError):
    """No space left where Sealroom keeps its data: nothing is lost, the work resumes when there is room."""

    def __init__(self, where: object) -> None:
        super().__init__(
            f"disk full: no space left for the data folder {where}; free some space, then run the command "
            "again (nothing indexed so far is lost, and indexing resumes where it stopped)"
        )


SQLITE_FULL = 13
FULL_MESSAGES = ("database or disk is full", "no space left on device", "disk quota exceeded")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error it was raised from, says the disk is full (SQLite, the OS, Chroma's wrappers)."""
    import errno
    import sqlite3

    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DiskFull):
            return True
        if (
            isinstance(exc, sqlite3.Error)
            and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_FULL
        ):
            return True
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(m in str(exc).lower() for m in FULL_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class ServerUnreachable(SealroomError):
    """A team-mode server (vector index, catalog) did not answer: the message names it and what to do."""

    def __init__(self, what: str, host: str, port: int, hint: str) -> None:
        self.host, self.port = host, port
        super().__init__(f"{what} at {host}:{port} did not answer: {hint}")


class ServerBusy(SealroomError):
    """A team-mode server answers but has no room for the request now (every connection in use): the
    request can be repeated in a moment; nothing is down."""
