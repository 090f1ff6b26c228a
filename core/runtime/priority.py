"""CPU priority: background work yields to the window and to the answer the user waits for.

On a 2-core laptop, parsing, embedding and model loading would otherwise keep every core
busy, and the GUI thread (waiting for a core, then for the GIL) would stutter.
"""

from __future__ import annotations

import contextlib
import os
import sys

PARSER = 10  # parse worker processes
# the embedding model's thread pool: behind the parsers, so files become searchable by keyword first
EMBEDDER = 19
MODEL = 4  # the chat model's process: behind the window, ahead of indexing


def lower_process(increment: int) -> None:
    """Lower the priority of this (single-threaded, just started) worker process."""
    with contextlib.suppress(AttributeError, OSError):  # Windows has no nice; it only costs smoothness
        os.nice(increment)


def lower_this_thread(increment: int) -> bool:
    """Lower the calling thread's priority, and so that of threads it starts; Linux only.

    Elsewhere nice() applies to the whole process, so this does nothing and says so.
    """
    if not sys.platform.startswith("linux"):
        return False
    lower_process(increment)  # on Linux nice() changes the calling thread only
    return True
