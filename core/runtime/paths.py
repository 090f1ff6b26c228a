"""Where Sealroom keeps its data: SEALROOM_HOME, else the platform's user data directory."""

from __future__ import annotations

import os
from pathlib import Path

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
