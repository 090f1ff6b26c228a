"""Where Sealroom keeps its data: SEALROOM_HOME, else the platform's user data directory."""

from __future__ import annotations

import os
from pathlib import Path

from sealroom.core.runtime.errors import UsageError

APP_NAME = "Sealroom"


def data_dir() -> Path:
    """The data directory, created with mode 0700 (it holds document text)."""
    override = os.environ.get("SEALROOM_HOME")
    if override:
        path = Path(override).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path.resolve()


def is_within(path: str, folder: str) -> bool:
    """`path` is `folder` or inside it, by name ('/a/bc' is not inside '/a/b'); callers resolve links
    first where links matter."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def sealroom_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sealroom")
    except PackageNotFoundError:
        return "unknown"


def folder_to_watch(folder: str, home: Path, watched: list[str]) -> str:
    """`folder` as an absolute path, if it may be watched: a folder, not the whole disk, neither inside
    nor around Sealroom's data folder `home`, not overlapping a folder already `watched`."""
    path = os.path.abspath(os.path.expanduser(folder))
    if not os.path.isdir(path):
        raise UsageError(f"not a folder: {folder}")
    if os.path.dirname(path) == path:
        raise UsageError(f"{path} is the whole disk; add the folders that hold your documents")
    data, real = os.path.realpath(home), os.path.realpath(path)
    if is_within(data, real) or is_within(real, data):
        raise UsageError(f"{path} holds Sealroom's own data folder ({home}); choose another folder")
    for known in watched:
        if path != known and (is_within(path, known) or is_within(known, path)):
            raise UsageError(f"{path} overlaps the watched folder {known}")
    return path
