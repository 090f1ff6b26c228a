"""The bundle's one executable: `sealroom` (CLI), `sealroom --desktop` (the window), or a helper worker."""

from __future__ import annotations

import sys


def main() -> int:
    from sealroom.core.runtime.workers import run_worker_from_argv

    if run_worker_from_argv(sys.argv):
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--desktop":
        del sys.argv[1]
        from sealroom.desktop.app import main as desktop

        return int(desktop() or 0)
    from sealroom.core.cli import main as cli

    return cli()


if __name__ == "__main__":
    sys.exit(main())
