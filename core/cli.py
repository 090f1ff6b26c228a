"""`sealroom`: the command line, a thin and stable layer over the Engine.

Expected errors print one line on stderr and exit 1 (2 for usage); output meant for
scripts is JSON on stdout with --json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sealroom.core.engine import Engine

from sealroom.core.protocols import REASONS
from sealroom.core.runtime.errors import DataDirInUse, DiskFull, SealroomError, UsageError, is_disk_full


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sealroom", description="Private document assistant: local index, cited answers."
    )
    from sealroom.core.runtime.paths import sealroom_version

    p.add_argument("--version", action="version", version=f"sealroom {sealroom_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", help="watch one or more folders")
    add.add_argument("folders", nargs="+", metavar="FOLDER")
    rm = sub.add_parser("remove", help="stop watching a folder and drop its files from the index")
    rm.add_argument("folder", metavar="FOLDER")
    sub.add_parser("folders", help="list watched folders")
    index = sub.add_parser("index", help="bring the index in line with the watched folders, then exit")
    index.add_argument("--retry-failed", action="store_true", help="try the files that failed once more")
    watch = sub.add_parser("watch", help="stay up and keep the index fresh")
    watch.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    status = sub.add_parser("status", help="files and their states")
    status.add_argument("--json", action="store_true")
    search = sub.add_parser("search", help="find passages without calling the model")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=None, help="number of hits")
    search.add_argument("--folder", help="only files under this folder")
    search.add_argument("--type", action="append", dest="types", help="only this file type (pdf, docx, ...)")
    search.add_argument("--json", action="store_true")
    ask = sub.add_parser("ask", help="answer a question from your documents, with citations")
    ask.add_argument("question")
    ask.add_argument("--chat", type=int, help="continue this chat (its id is printed with every answer)")
    ask.add_argument("--folder", help="only files under this folder")
    ask.add_argument("--type", action="append", dest="types", help="only this file type")
    ask.add_argument("--json", action="store_true")
    ev = sub.add_parser(
        "eval", help="measure answer quality on a question set (JSON lines), or on your rated answers"
    )
    ev.add_argument("file", metavar="FILE.jsonl", nargs="?")
    ev.add_argument(
        "--feedback",
        action="store_true",
        help="run your rated and corrected answers through today's setup and compare with the last run",
    )
    ev.add_argument(
        "--revert", action="store_true", help="with --feedback: go back to the settings before a regression"
    )
    ev.add_argument("--model", help="chat model for this run (a GGUF path or a known sha256)")
    ev.add_argument("--check", action="store_true", help="exit 1 when a quality target is missed")
    ev.add_argument("--split", choices=["dev", "test"], help="only the questions of this split")
    ev.add_argument("--json", action="store_true")
    fb = sub.add_parser(
        "feedback",
        help="rate an answer (helpful or not, why, and what does answer it); list or remove ratings",
        description="Reasons for --bad: " + ", ".join(f"{k} ({v})" for k, v in REASONS.items()),
    )
    fb.add_argument("answer", type=int, nargs="?", metavar="ANSWER_ID", help="printed with every answer")
    rating = fb.add_mutually_exclusive_group()
    rating.add_argument("--good", action="store_true", help="the answer was helpful")
    rating.add_argument("--bad", choices=list(REASONS), metavar="REASON", help="not helpful, and why")
    rating.add_argument("--list", action="store_true", help="your ratings and corrections")
    rating.add_argument("--remove", type=int, metavar="FEEDBACK_ID", help="remove a rating or correction")
    fb.add_argument("--passage", metavar="CHUNK_ID", help="the passage that does answer (see search --json)")
    fb.add_argument("--expected", metavar="TEXT", help="the answer you expected")
    fb.add_argument("--json", action="store_true")
    rp = sub.add_parser("report", help="health over time: use, latency, ratings, failures, alerts, drift")
    rp.add_argument(
        "--html", metavar="FILE", help="write an HTML report with charts (for a compliance review)"
    )
    rp.add_argument("--days", type=_positive, default=30)
    rp.add_argument("--prometheus", action="store_true", help="the metrics in Prometheus' text format")
    rp.add_argument("--json", action="store_true")
    ex = sub.add_parser(
        "export", help="export an answer, a chat or a search to a destination (via the outbox)"
    )
    what = ex.add_mutually_exclusive_group(required=True)
    what.add_argument("--chat", type=int, help="a whole chat (its id is printed with every answer)")
    what.add_argument("--answer", type=int, help="one answer (answer_id in `ask --json`)")
    what.add_argument("--search", metavar="QUERY", help="the passages a search finds")
    ex.add_argument("--to", required=True, metavar="NAME", help="a destination from `sealroom destinations`")
    ex.add_argument("--format", choices=["md", "docx", "json"], default="md")
    ex.add_argument("-k", type=int, default=None, help="number of hits for --search")
    ex.add_argument("--json", action="store_true")
    dests = sub.add_parser("destinations", help="export destinations: list, add, remove, test")
    dsub = dests.add_subparsers(dest="action", metavar="ACTION")
    dadd = dsub.add_parser("add", help="add a folder or an SMB share (the password goes to the OS keyring)")
    dadd.add_argument("name")
    where = dadd.add_mutually_exclusive_group(required=True)
    where.add_argument("--folder", metavar="PATH")
    where.add_argument("--smb", metavar="//SERVER/SHARE/DIR")
    dadd.add_argument("--user", default="", help="SMB user name (DOMAIN\\user or user)")
    dadd.add_argument("--password-stdin", action="store_true", help="read the SMB password from stdin")
    drm = dsub.add_parser("remove", help="forget a destination (and its password)")
    drm.add_argument("name")
    dtest = dsub.add_parser("test", help="write and remove a small file there")
    dtest.add_argument("name")
    dests.add_argument("--json", action="store_true")
    ob = sub.add_parser("outbox", help="exports waiting, delivered or failed; `outbox retry` sends them now")
    ob.add_argument("action", nargs="?", choices=["retry"])
    ob.add_argument("id", nargs="?", help="only this item (a prefix of its id)")
    ob.add_argument("--json", action="store_true")
    au = sub.add_parser("audit", help="the audit trail: show, verify, export")
    au.add_argument("action", nargs="?", choices=["show", "verify", "export"], default="show")
    au.add_argument("--to", metavar="NAME", help="destination for `audit export`")
    au.add_argument("-n", type=_positive, default=20, help="records to show")
    au.add_argument("--json", action="store_true")
    sub.add_parser("repair", help="rebuild the vector index from the catalog")
    team = sub.add_parser(
        "team", help="team mode: keep your team token (login), check the team index (status)"
    )
    team.add_argument("action", choices=["login", "status", "logout"])
    models = sub.add_parser("models", help="list chat models, or add one")
    models.add_argument("action", nargs="?", choices=["add"])
    models.add_argument("path", nargs="?")
    return p


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _progress_bar() -> Any:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, current: str | None, detail: str = "") -> None:
        width = 30
        filled = int(width * done / total) if total else width
        name = (current or "").rsplit("/", 1)[-1][:40] + (f" ({detail})" if detail else "")
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name[:70]:<70}")
        if current is None:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"needs a number of 1 or more, not {n}")
    return n


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Run a parsed command on this process's engine or, while another process owns the data directory
    (the window), in that process through its control socket (`argv`: the command line as given)."""
    from sealroom.core.engine import Engine

    if args.command == "audit" and args.action == "verify":
        return _audit_verify(args.json)  # read-only: works while the app runs
    if args.command == "team":
        return _team(args.action)  # the keyring and the team server only: works while the app runs
    absolute_paths(args, os.getcwd())
    try:
        engine = Engine(purpose=f"sealroom {args.command}")
    except DataDirInUse as exc:
        return _elsewhere(args, sys.argv[1:] if argv is None else argv, exc)
    with engine:
        if engine.recovered:
            print(f"sealroom: {engine.recovered}", file=sys.stderr)
        return COMMANDS[args.command](engine, args) or 0


#: Commands the owner of the data directory runs for the command line (the window, `sealroom watch`); the
#: others need the data directory to themselves (`destinations add` may ask for a password, `models add`
#: loads a model, `index`, `watch`, `repair` and `eval` run long on it).
FORWARDED = frozenset(
    ("status", "search", "ask", "export", "audit", "folders", "add", "remove", "feedback", "report", "outbox")
)


def forwardable(args: argparse.Namespace) -> bool:
    if args.command == "models":
        return args.action is None
    if args.command == "destinations":
        return args.action != "add"
    return args.command in FORWARDED


def _named(args: argparse.Namespace) -> str:
    action = getattr(args, "action", None) if args.command in ("models", "destinations") else None
    return f"sealroom {args.command}" + (f" {action}" if action else "")


def needs_it_alone(args: argparse.Namespace, owner: str = "") -> DataDirInUse:
    """The one-line refusal of a command that cannot run while another process owns the data directory."""
    return DataDirInUse(
        (f"{owner}; " if owner else "")
        + f"`{_named(args)}` needs the data directory to itself: quit that first (in the window: File › Quit), "
        "or do it in the window"
    )


def absolute_paths(args: argparse.Namespace, cwd: str) -> None:
    """Paths in the arguments made absolute against `cwd`, where the command was typed (a forwarded command
    runs in another process, with another working folder; the same paths either way)."""

    def absolute(path: str) -> str:
        return os.path.abspath(os.path.join(cwd, os.path.expanduser(path)))

    if args.command == "add":
        args.folders = [absolute(f) for f in args.folders]
    elif args.command in ("remove", "search", "ask") and args.folder:
        args.folder = absolute(args.folder)
    elif args.command == "report" and args.html:
        args.html = absolute(args.html)


def _elsewhere(args: argparse.Namespace, argv: list[str], exc: DataDirInUse) -> int:
    """Hand the command to the process that owns the data directory, if it serves commands; else say why not."""
    from sealroom.core.runtime import control
    from sealroom.core.runtime.paths import data_dir

    if not forwardable(args):
        raise needs_it_alone(args, str(exc)) from None
    request = control.Request(list(argv), os.getcwd(), sys.stdout.isatty(), sys.stderr.isatty())
    code = control.forward(data_dir(), request, sys.stdout, sys.stderr)
    if code is None:  # an owner that serves no commands (an older Sealroom, or one still starting)
        raise exc
    return code


def command_of(argv: list[str]) -> str | None:
    """The command a command line names (`ask` for `ask "..." --json`)."""
    return next((a for a in argv if not a.startswith("-")), None)


def serve(engine: Engine, argv: list[str], cwd: str) -> int:
    """Run a command the command line handed over (see `run`) on this process's engine: the same parser,
    command and error handling as `main`, so it prints the same and exits with the same code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # a usage error (2), --help or --version (0): argparse has printed them
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    if not forwardable(args):
        print(f"sealroom: {needs_it_alone(args)}", file=sys.stderr)
        return DataDirInUse.exit_code
    absolute_paths(args, cwd)
    return _guarded(lambda: COMMANDS[args.command](engine, args) or 0, own_process=False)


def _add(engine: Engine, args: argparse.Namespace) -> None:
    for folder in args.folders:
        print(f"watching {engine.add_folder(folder)}")


def _remove(engine: Engine, args: argparse.Namespace) -> None:
    print(f"stopped watching {engine.remove_folder(args.folder)}")


def _folders(engine: Engine, args: argparse.Namespace) -> None:
    for folder in engine.folders():
        print(folder)


def _index(engine: Engine, args: argparse.Namespace) -> None:
    if args.retry_failed:
        engine.retry_failed()
    summary = engine.index(_progress_bar())
    counts = summary.by_status
    print(
        f"{counts.get('indexed', 0)} indexed, {counts.get('failed', 0)} failed, "
        f"{counts.get('skipped', 0)} skipped, {counts.get('pending', 0)} pending; "
        f"this run: {summary.files} files, {summary.pages} pages, {summary.chunks} chunks "
        f"in {summary.seconds:.1f} s"
    )


def _status(engine: Engine, args: argparse.Namespace) -> None:
    status = engine.status()
    alerts = engine.feedback.alerts()
    status["alerts"] = [a.to_dict() for a in alerts]
    if args.json:
        _print_json(status)
        return
    for f in status["files"]:
        print(f"{f['status']:<8} {f['path']}" + (f"  ({f['reason']})" if f["reason"] else ""))
    print(f"{status['chunks']} chunks; " + ", ".join(f"{n} {s}" for s, n in sorted(status["counts"].items())))
    if status["semantic_pending"]["message"]:
        print(status["semantic_pending"]["message"])
    for warning in status["warnings"]:
        print(f"warning: {warning}")
    for alert in alerts:
        print(f"alert: {alert.line()}")


def _search(engine: Engine, args: argparse.Namespace) -> None:
    hits = engine.search(args.query, args.k, args.folder, args.types)
    notice = engine.answering.notice  # team mode: what the search could not reach
    if args.json:
        _print_json({"hits": [h.to_dict() for h in hits]} | ({"notice": notice} if notice else {}))
        return
    if notice:
        print(f"sealroom: {notice}", file=sys.stderr)
    for n, h in enumerate(hits, 1):
        where = ("team: " if h.origin else "") + f"{h.path}" + (f", page {h.page}" if h.page else "")
        print(f"[{n}] {where}\n    {' '.join(h.text.split())[:300]}\n")


def _team(action: str) -> int:
    """`sealroom team login` keeps the token IT gave in the OS keyring (read from standard input, never an
    argument a process list shows); `status` asks the team server; `logout` forgets the token."""
    from sealroom.core.answer.team import TOKEN_ACCOUNT, TeamIndex, stored_token
    from sealroom.core.runtime import secrets_store
    from sealroom.core.runtime.config import load_settings

    settings = load_settings()
    if not settings.team_server:
        raise UsageError("team mode is off: the IT policy names no team_server")
    url = settings.team_server.rstrip("/")
    if action == "logout":
        secrets_store.delete(TOKEN_ACCOUNT, url)
        print(f"forgot the team token for {url}")
        return 0
    if action == "login":
        if sys.stdin.isatty():
            import getpass

            token = getpass.getpass(f"Team token for {url} (from IT): ").strip()
        else:
            token = sys.stdin.readline().strip()
        if not token:
            raise UsageError("no token given")
        TeamIndex(url, token, settings.team_ca, settings.allowed_hosts).search(
            "sealroom", k=1
        )  # refused: says why
        secrets_store.store(TOKEN_ACCOUNT, url, token)
        print(f"the team token for {url} is in your keyring")
        return 0
    team = TeamIndex(url, stored_token(url), settings.team_ca, settings.allowed_hosts)
    health = team.health()
    print(f"team index {url}: {health.get('status')}, {health.get('passages', '?')} passages")
    if not stored_token(url):
        print("no team token in your keyring: `sealroom team login`", file=sys.stderr)
        return 1
    team.search("sealroom", k=1)
    print("your token is accepted")
    return 0


def _repair(engine: Engine, args: argparse.Namespace) -> None:
    print(f"rebuilt the vector index: {engine.repair(_progress_bar())} chunks")


def _models(engine: Engine, args: argparse.Namespace) -> None:
    if args.action == "add":
        if not args.path:
            raise UsageError("models add needs a PATH to a .gguf file")
        entry = engine.add_model(args.path)
        print(f"added {entry.name} ({entry.sha256[:12]}, {entry.size / 1e6:.0f} MB)")
        return
    models = engine.models()
    if not models:
        print("no chat model here is on the IT policy's allowed_model_sha256; add one with `models add`")
    for e in models:
        flag = " (default)" if e.default else ""
        print(f"{e.sha256[:12]}  {e.name}{flag}  {e.size / 1e6:.0f} MB  ctx {e.context_length}  {e.path}")


def _watch(engine: Engine, args: argparse.Namespace) -> int:
    as_json = args.json
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def emit(event: dict[str, Any]) -> None:
        if as_json:
            _print_json({k: v for k, v in event.items() if v is not None})
        elif event["event"] == "scanned":
            if event["queued"] or event["removed"]:
                print(f"scanned: {event['queued']} to index, {event['removed']} removed", flush=True)
        else:
            print(
                f"{event.get('status') or event['event']}: {event.get('path', '')}"
                + (f" ({event['reason']})" if event.get("reason") else ""),
                flush=True,
            )

    engine.emit = emit
    with _serving(engine), contextlib.suppress(KeyboardInterrupt):
        engine.watch(on_ready=lambda: emit({"event": "ready"}), stop=stop)
    return 0


@contextlib.contextmanager
def _serving(engine: Engine) -> Iterator[None]:
    """While `watch` runs, the other commands run in it, one at a time (core/runtime/control.py)."""
    from sealroom.core.runtime import control, logs

    one_at_a_time = threading.Lock()

    def handle(request: control.Request) -> int:
        with one_at_a_time:
            code = serve(engine, request.argv, request.cwd)
        if command_of(request.argv) == "add":
            engine.rescan()
        return code

    server = control.ControlServer(engine.home, handle)
    try:
        server.start()
    except (OSError, SealroomError) as exc:  # watching goes on; other commands are refused as before
        logs.problem("command line not served", reason=str(exc))
        yield
        return
    try:
        yield
    finally:
        server.stop()


def _ask(engine: Engine, args: argparse.Namespace) -> int:
    streaming = not args.json and sys.stdout.isatty()

    def on_text(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    answer = engine.ask(
        args.question,
        chat_id=args.chat,
        on_token=on_text if streaming else None,
        folder=args.folder,
        types=args.types,
        origin="cli",
    )
    if args.json:
        _print_json(answer.to_dict())
        return 0
    if streaming:
        print()
    else:
        print(answer.text)
    for c in answer.citations:
        print(f"[{c['n']}] {c['path']}" + (f", page {c['page']}" if c["page"] else ""))
    for note in answer.notes():
        print(f"({note})")
    print(
        f"(answer {answer.answer_id} in chat {answer.chat_id}; continue with --chat {answer.chat_id}; "
        f"rate it with: sealroom feedback {answer.answer_id} --good, or --bad REASON)"
    )
    return 0


def _feedback(engine: Engine, args: argparse.Namespace) -> int:
    fb = engine.feedback
    if args.list:
        ratings = fb.all()
        if args.json:
            _print_json({"feedback": [r.to_dict() for r in ratings]})
            return 0
        from sealroom.core.answer.corrections import when

        for r in ratings:
            said = r.rating + (f" ({r.reason})" if r.reason else "")
            fix = (f"; passage {r.passage}" if r.passage else "") + (
                f"; expected: {r.expected}" if r.expected else ""
            )
            print(f"{r.id:>4}  {when(r.created_at)}  answer {r.answer_id}  {said}{fix}\n      {r.question}")
        if not ratings:
            print("no ratings yet")
        return 0
    if args.remove is not None:
        removed = fb.remove(args.remove)
        print(f"removed feedback {removed.id} (answer {removed.answer_id}); it is no longer used or checked")
        return 0
    if args.answer is None or not (args.good or args.bad):
        raise UsageError("say which answer and how: sealroom feedback ANSWER_ID --good, or --bad REASON")
    if args.good and (args.passage or args.expected):
        raise UsageError("--passage and --expected go with --bad")
    rating = fb.rate(args.answer, args.good, args.bad or "", args.passage or "", args.expected or "")
    if args.json:
        _print_json(rating.to_dict())
    else:
        what = "a correction" if rating.is_correction else "a rating"
        print(
            f"saved {what} of answer {args.answer} (feedback {rating.id}); `sealroom eval --feedback` checks it"
        )
    return 0


def _report(engine: Engine, args: argparse.Namespace) -> int:
    fb = engine.feedback
    fb.sample(force=True)
    if args.prometheus:
        sys.stdout.write(fb.prometheus())
        return 0
    from sealroom.core.feedback import report

    history, drift = fb.history(args.days), fb.drift_report()
    if args.html:
        from pathlib import Path

        print(f"wrote {report.write_html(Path(args.html), history, drift)}")
    if args.json:
        _print_json({**history, "drift": drift})
    elif not args.html:
        print(report.text(history, drift))
    return 0


def _export(engine: Engine, args: argparse.Namespace) -> int:
    if args.search is not None:
        result = engine.export_search(args.search, args.to, args.format, args.k)
    else:
        result = engine.output.export(args.to, args.format, chat_id=args.chat, answer_id=args.answer)
    return _report_items([result.item], args.json, single=True)


def _report_items(items: list[Any], as_json: bool, single: bool = False) -> int:
    if as_json:
        rows = [
            {
                "id": i.id,
                "status": i.status,
                "destination": i.destination,
                "file_name": i.delivered_as or i.file_name,
                "sha256": i.sha256,
                "reason": i.reason,
            }
            for i in items
        ]
        _print_json(rows[0] if single and rows else {"items": rows})
    for i in items if not as_json else []:
        name = i.delivered_as or i.file_name
        line = f"{i.status:<9} {i.id[:8]}  {i.destination}: {name}"
        print(line + (f"  ({i.reason})" if i.reason else ""))
    return 1 if single and items and items[0].status == "failed" else 0


def _destinations(engine: Engine, args: argparse.Namespace) -> int:
    out = engine.output
    if args.action == "add":
        password = None
        if args.smb:
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                import getpass

                password = getpass.getpass(f"Password for {args.user or 'the share'}: ")
            if not password:
                raise UsageError("an SMB destination needs a password")
        dest = out.add_destination(args.name, args.folder, args.smb, args.user, password)
        print(f"added {dest.describe()}" + (" (password kept in the OS keyring)" if password else ""))
    elif args.action == "remove":
        print(f"removed {out.remove_destination(args.name).describe()}")
    elif args.action == "test":
        print(out.test_destination(args.name))
    else:
        dests = out.destinations.all()
        if args.json:
            _print_json(
                {
                    "destinations": [
                        {"name": d.name, "kind": d.kind, "target": d.target, "user": d.user} for d in dests
                    ]
                }
            )
        elif not dests:
            print("no export destinations; add one with `sealroom destinations add NAME --folder PATH`")
        for d in dests if not args.json else []:
            print(d.describe())
    return 0


def _outbox(engine: Engine, args: argparse.Namespace) -> int:
    if args.action == "retry":
        tried = engine.output.retry(args.id)
        if not tried and not args.json:
            print("nothing waiting in the outbox")
        return _report_items(tried, args.json)
    items = engine.output.outbox.items()
    if args.id:
        items = [i for i in items if i.id.startswith(args.id)]
    if not items and not args.json:
        print("the outbox is empty")
    return _report_items(items, args.json)


def _audit(engine: Engine, args: argparse.Namespace) -> int:
    if args.action == "export":
        if not args.to:
            raise UsageError("audit export needs --to NAME")
        return _report_items([engine.output.export_audit(args.to).item], args.json, single=True)
    records = engine.audit.records(args.n)
    if args.json:
        _print_json({"records": records})
        return 0
    for r in records:
        data = ", ".join(f"{k}={v}" for k, v in r.get("data", {}).items())
        print(
            f"{r.get('seq', '?'):>5} {r.get('time', '')} {r.get('user', '')} {r.get('event', '')}  {data}"[
                :400
            ]
        )
    return 0


def _audit_verify(as_json: bool) -> int:
    from sealroom.core.output.audit import AuditTrail
    from sealroom.core.runtime.paths import data_dir

    result = AuditTrail(data_dir()).verify()
    if as_json:
        _print_json(result.to_dict())
    else:
        print(result.message if result.ok else f"BROKEN: {result.message}")
    return 0 if result.ok else 1


def _eval(engine: Engine, args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from sealroom.core.answer import evaluate

    if args.feedback:
        return _eval_feedback(engine, args)
    if not args.file:
        raise UsageError("name a question set (FILE.jsonl), or use --feedback for your rated answers")
    questions = evaluate.load_questions(Path(args.file))
    if args.split:
        questions = [q for q in questions if q.split == args.split]
    if args.model:
        engine.apply_settings(dataclasses.replace(engine.settings, chat_model=args.model))
    bar = _progress_bar()
    results = evaluate.run_eval(
        engine, questions, bar and (lambda i, n, qid: bar(i, n, qid if i < n else None))
    )
    summary = evaluate.summarise(results)
    splits = evaluate.summarise_splits(results)
    model = engine.model_state.removeprefix("ready: ")
    if args.json:
        _print_json(evaluate.results_json(summary, results, model))
    elif len(splits) > 1:  # a set split into dev and test: both, and the gap
        print(evaluate.report(summary, results, model, show={"", "dev"}))
        print(evaluate.split_table(splits))
    else:
        print(evaluate.report(summary, results, model))
    missed = evaluate.missed_real_targets(splits) if "gap" in splits else evaluate.missed_targets(summary)
    if args.check and missed:
        print("sealroom: quality targets missed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


def _eval_feedback(engine: Engine, args: argparse.Namespace) -> int:
    """The regression set of rated answers run now, and the drift report against the last run."""
    fb = engine.feedback
    if args.revert:
        from sealroom.core.feedback.regression import settings_text

        print("went back to " + settings_text(fb.go_back(engine.apply_settings)))
        return 0
    if args.model:
        import dataclasses

        engine.apply_settings(dataclasses.replace(engine.settings, chat_model=args.model))
    bar = _progress_bar()
    run, report = fb.check("you asked", bar and (lambda i, n: bar(i, n, None)))
    passed = sum(r["passed"] for r in run.results)
    if args.json:
        _print_json(
            {"run": run.id, "items": len(run.results), "passed": passed, "results": run.results,
             "drift": report.to_dict() if report else None}
        )  # fmt: skip
    else:
        from sealroom.core.feedback import report as render

        print(f"{passed} of {len(run.results)} rated answers as they should be (run {run.id})")
        for r in run.results:
            print(f"  {'ok  ' if r['passed'] else 'MISS'} {r['id']:>4} {r['question'][:70]}")
        if report:
            print(render.drift_text(report.to_dict()))
    if report is not None and report.regression:
        print(f"sealroom: {report.summary()}", file=sys.stderr)
        return 1
    return 0


def _data_dir_name() -> str:
    from sealroom.core.runtime.paths import data_dir

    return str(data_dir())


#: Every command: what it runs over the engine (None or an exit code back). `audit verify` runs without it.
COMMANDS: dict[str, Callable[[Engine, argparse.Namespace], int | None]] = {
    "add": _add,
    "remove": _remove,
    "folders": _folders,
    "index": _index,
    "watch": _watch,
    "status": _status,
    "search": _search,
    "ask": _ask,
    "eval": _eval,
    "feedback": _feedback,
    "report": _report,
    "export": _export,
    "destinations": _destinations,
    "outbox": _outbox,
    "audit": _audit,
    "repair": _repair,
    "models": _models,
}


#: Commands that run without the engine (they touch neither the data directory nor its lock).
WITHOUT_ENGINE = frozenset({"team"})


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is shown escaped (\udce9)
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)  # exits 2 on usage errors
    return _guarded(lambda: run(args, argv))


def _guarded(call: Callable[[], int], own_process: bool = True) -> int:
    """`call`'s exit code, with expected errors as one line on stderr and their exit code."""
    try:
        return call()
    except BrokenPipeError:  # `sealroom audit | head`: the reader has what it wanted
        if own_process:
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except SealroomError as exc:
        print(f"sealroom: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        print(f"sealroom: {DiskFull(_data_dir_name())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sealroom: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
