"""The parser subprocess: reads one JSON request a line on stdin, answers one JSON line on stdout.

Run as `python -m sealroom.core.ingest.parse_worker MEMORY_MB`. A parser that loops, crashes or
exhausts memory takes only this process down; the pool notices and starts another.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _limit_memory(megabytes: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_AS; the wall-clock limit still applies
        return
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# What a parser's exception means, by its class name; messages are never used (they can hold document text).
KINDS = {
    "PdfReadError": "damaged PDF",
    "PdfStreamError": "damaged PDF (a stream ends early)",
    "EmptyFileError": "empty file",
    "BadZipFile": "not a valid Office file (damaged ZIP package)",
    "PackageNotFoundError": "not a valid Office file",
    "XMLSyntaxError": "damaged XML inside the file",
    "UnicodeDecodeError": "text in an unknown encoding",
    "KeyError": "damaged internal structure",
    "IndexError": "damaged internal structure",
    "ValueError": "damaged or unexpected content",
    "TypeError": "damaged or unexpected content",
    "AssertionError": "damaged or unexpected content",
    "ZeroDivisionError": "damaged or unexpected content",
    "OSError": "cannot read the file",
    "LimitReachedError": "content too large when decompressed (over the PDF reader's safety limit)",
    "RecursionError": "structure nested too deeply",
}

# Exception classes named too plainly to tell the kind (`csv.Error`, `zlib.error`): told by their module.
MODULE_KINDS = {
    "_csv": "damaged CSV",
    "csv": "damaged CSV",
    "zlib": "damaged compressed data",
    "struct": "damaged binary structure",
    "binascii": "damaged encoded data",
}


def failure_kind(exc: BaseException, path: Path) -> str:
    """A user-fit description of a parse failure that quotes nothing from the file."""
    if isinstance(exc, OSError) and exc.errno is None:
        # no OS error code: a parser (pypdf) complaining about the content, not a failed read
        return f"damaged or unexpected content ({type(exc).__name__})"
    module = type(exc).__module__.split(".")[0]
    if module in MODULE_KINDS:
        return f"{MODULE_KINDS[module]} ({module.lstrip('_')}.{type(exc).__name__})"
    for cls in type(exc).__mro__:
        if cls.__name__ in KINDS:
            return f"{KINDS[cls.__name__]} ({type(exc).__name__})"
    return (
        f"unexpected error in the {path.suffix.lstrip('.').upper() or 'file'} parser ({type(exc).__name__})"
    )


def handle(request: dict[str, Any], memory_mb: int) -> dict[str, object]:
    from sealroom.core.ingest.parsers import LATER, NeedsOcr, Unindexable, _Budget, parse

    path = Path(request["path"])
    requested = request.get("ocr", True)
    _Budget.ocr = LATER if requested == LATER else bool(requested)
    try:
        k, n = request.get("part") or (0, 1)
        parsed = parse(
            path, int(request.get("max_chars") or 0), (int(k), int(n)), bool(request.get("pdfium", True))
        )
    except NeedsOcr as exc:
        return {"ok": False, "status": "later", "reason": str(exc)}
    except Unindexable as exc:
        return {"ok": False, "status": "skipped", "reason": str(exc)}
    except MemoryError:
        return {
            "ok": False,
            "status": "failed",
            "reason": f"parse error: needs more than {memory_mb} MB of memory",
        }
    except TimeoutError as exc:
        return {"ok": False, "status": "failed", "reason": f"parse error: {exc}"}
    except RecursionError:
        return {"ok": False, "status": "failed", "reason": "parse error: structure nested too deeply"}
    except FileNotFoundError:
        return {"ok": False, "status": "gone", "reason": "file disappeared"}
    except Exception as exc:  # the message may quote the document: only the kind of failure is kept
        return {"ok": False, "status": "failed", "reason": f"parse error: {failure_kind(exc, path)}"}
    return {"ok": True, **parsed.to_json()}


def main() -> None:
    from sealroom.core.runtime import offline
    from sealroom.core.runtime.priority import PARSER, lower_process

    offline.enforce()  # this process never needs the network either

    lower_process(PARSER)
    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if memory_mb:
        _limit_memory(memory_mb)
    import warnings

    warnings.simplefilter("ignore")  # pypdf warns about every malformed object
    import logging

    logging.disable(logging.CRITICAL)
    out = sys.stdout
    sys.stdout = sys.stderr  # a chatty parser must not corrupt the protocol
    from sealroom.core.ingest.parsers import _Budget

    def progress() -> None:  # a slow step (an OCR'd page) is done: the pool waits on, this is not a hang
        out.write('{"progress": 1}\n')
        out.flush()

    _Budget.progress = progress
    for line in sys.stdin:
        response = handle(json.loads(line), memory_mb)
        # Python keeps the memory of a big parse: a worker that grew large is replaced by a fresh one
        retire = _peak_mb() > RETIRE_MB
        out.write(json.dumps({**response, "retire": retire}, ensure_ascii=False) + "\n")
        out.flush()
        if retire:
            return


#: A worker whose peak memory passed this many MB exits after its answer (the pool starts another).
RETIRE_MB = 300


def _peak_mb() -> float:
    """This process's own peak resident memory. Not getrusage's ru_maxrss on Linux: that keeps the
    parent's resident size across fork and exec, so a worker started by an app of 400 MB would count
    as grown large at once and be replaced after every file."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
