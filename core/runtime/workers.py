"""How Sealroom starts its helper processes (parser workers, the LLM worker, deriving the
embedder and the compact chat model).

From source they run as `python -m MODULE`. In a frozen bundle (PyInstaller) there is no
`python`: the bundle's own executable is started with `--sealroom-worker MODULE`, and
`run_worker_from_argv()` (called first by the bundle's entry point) runs that module's main.
"""

from __future__ import annotations

import importlib
import sys

WORKER_FLAG = "--sealroom-worker"
WORKERS = (
    "sealroom.core.ingest.parse_worker",
    "sealroom.models.llm_worker",
    "sealroom.models.embedding",
    "sealroom.models.compact",
)


def worker_command(module: str, *args: str) -> list[str]:
    if module not in WORKERS:
        raise ValueError(f"not a worker module: {module}")
    if getattr(sys, "frozen", False):
        return [sys.executable, WORKER_FLAG, module, *args]
    return [sys.executable, "-m", module, *args]


def run_to_end(module: str, *args: str, timeout_s: float) -> str | None:
    """Run a worker module in a helper process until it exits: None when it exits 0, else its last
    words (its last stderr line starting with "sealroom:", else its last stderr line, else its status)."""
    import subprocess

    done = subprocess.run(worker_command(module, *args), capture_output=True, text=True, timeout=timeout_s)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    own = [line for line in lines if line.startswith("sealroom:")]
    return (own or lines or [f"exit status {done.returncode}"])[-1]


def run_worker_from_argv(argv: list[str]) -> bool:
    """If `argv` asks for a worker, run it (argv as the module expects) and return True."""
    if len(argv) < 3 or argv[1] != WORKER_FLAG:
        return False
    module = argv[2]
    if module not in WORKERS:
        raise SystemExit(f"sealroom: unknown worker {module}")
    sys.argv = [module, *argv[3:]]
    importlib.import_module(module).main()
    return True
