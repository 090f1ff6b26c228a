"""`sealroom-server`: IT's commands for the team service (issue 29).

    sealroom-server start    [--workers N]          serve search and ask (TLS with the configured certificate)
    sealroom-server index    [--every SECONDS]      index the configured folders, publish to the servers
    sealroom-server health   [--ca FILE]            the running service's /health; exit 0 ok, 1 degraded, 2 down
    sealroom-server token    add USER --groups A,B | revoke USER | list
    sealroom-server audit    [--user U] [-n N]      who read what from the team index, and every refusal
    sealroom-server backup   DIR                    PostgreSQL (pg_dump) + Chroma's folder + the indexer's queue
    sealroom-server restore  DIR                    the same back (the servers stopped, see docs/team-mode.md)

Every command takes `--config FILE` (default: $SEALROOM_SERVER_CONFIG, then /etc/sealroom/server.toml).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from sealroom.core.runtime.errors import SealroomError, UsageError
from sealroom.server import config as server_config
from sealroom.server.config import ServerConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sealroom-server", description="Sealroom's team service")
    p.add_argument("--config", help="the service's configuration (TOML)")
    sub = p.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="serve search and ask to the laptops")
    start.add_argument("--workers", type=int, default=1, help="processes serving requests (default 1)")
    index = sub.add_parser("index", help="index the configured folders and publish them to the servers")
    index.add_argument("--every", type=float, default=0, help="keep going: index again every SECONDS")
    health = sub.add_parser("health", help="ask the running service how its engines are")
    health.add_argument("--ca", help="the CA certificate to trust (default: the configured certificate)")
    token = sub.add_parser("token", help="per-user tokens: add, revoke, list")
    tsub = token.add_subparsers(dest="action", required=True)
    tadd = tsub.add_parser("add", help="issue a token (printed once) for USER reading GROUPS")
    tadd.add_argument("user")
    tadd.add_argument("--groups", required=True, help="comma-separated groups the user may read")
    trevoke = tsub.add_parser("revoke", help="revoke every token of USER")
    trevoke.add_argument("user")
    tsub.add_parser("list", help="the tokens issued (users, groups, dates; never the tokens)")
    audit = sub.add_parser("audit", help="the service's audit trail: who read what, and every refusal")
    audit.add_argument("--user", help="only this user's requests")
    audit.add_argument("-n", type=int, default=50, help="the last N requests (default 50)")
    audit.add_argument("--json", action="store_true")
    backup = sub.add_parser("backup", help="back up PostgreSQL, Chroma's folder and the indexer's queue")
    backup.add_argument("dir")
    restore = sub.add_parser("restore", help="restore a backup made by `backup`")
    restore.add_argument("dir")
    return p


def start(config: ServerConfig, workers: int) -> None:
    import uvicorn

    os.environ["SEALROOM_SERVER_CONFIG"] = config.source
    options: dict[str, Any] = {"host": config.host, "port": config.port, "log_level": "warning"}
    if config.tls:
        options.update(ssl_certfile=config.certificate, ssl_keyfile=config.key)
    print(
        f"Sealroom service on {'https' if config.tls else 'http'}://{config.listen} "
        f"({workers} worker{'s' * (workers != 1)})",
        flush=True,
    )
    uvicorn.run("sealroom.server.app:from_environment", factory=True, workers=workers, **options)


def index(config: ServerConfig, every: float) -> int:
    """Index the configured folders with the laptop's ingest code, then publish; again every `every` s."""
    from sealroom.core.engine import Engine
    from sealroom.core.store.postgres import PostgresPassages
    from sealroom.core.store.remote_vectors import ChromaServerIndex
    from sealroom.server.publish import publish

    missing = [f for f in config.folders if not os.path.isdir(f)]
    for folder in missing:
        print(f"not a folder (skipped until it is there): {folder}", file=sys.stderr)
    with Engine(home=config.data, purpose="sealroom-server index") as engine:
        watched = set(engine.folders())
        for folder in config.folders:
            if folder not in watched and folder not in missing:
                engine.add_folder(folder)
        for folder in watched - set(config.folders):
            engine.remove_folder(folder)  # out of the configuration: out of the index, and off the servers
        pg = PostgresPassages(config.postgres)
        chroma = ChromaServerIndex(*config.chroma_address)
        try:
            while True:
                summary = engine.index()
                counts = engine.catalog.count_by_status()
                done = publish(engine.catalog, engine.parts.store, pg, chroma, config.folders)
                print(
                    json.dumps(
                        {
                            "indexed_files": summary.files,
                            "passages": summary.chunks,
                            "statuses": counts,
                            "published": done.to_dict(),
                        }
                    ),
                    flush=True,
                )
                if every <= 0:
                    return 0
                time.sleep(every)
        finally:
            pg.close()
            chroma.close()


def health(config: ServerConfig, ca: str | None) -> int:
    scheme = "https" if config.tls else "http"
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    url = f"{scheme}://{host}:{config.port}/health"
    context = ssl.create_default_context(cafile=ca or config.certificate or None) if config.tls else None
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            report = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        report = json.loads(exc.read() or b"{}") or {"status": "down"}
    except (OSError, ValueError) as exc:
        print(f"the service at {url} does not answer: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return {"ok": 0, "degraded": 1}.get(str(report.get("status")), 2)


def token(config: ServerConfig, args: argparse.Namespace) -> int:
    from sealroom.core.store.postgres import PostgresPassages
    from sealroom.server.tokens import Tokens

    pg = PostgresPassages(config.postgres)
    try:
        tokens = Tokens(pg.query)
        if args.action == "add":
            groups = [g.strip() for g in args.groups.split(",") if g.strip()]
            if not groups:
                raise UsageError("--groups names at least one group")
            print(tokens.issue(args.user, groups))
            print(
                f"issued to {args.user} for {', '.join(groups)}: give it to them once; it is not kept",
                file=sys.stderr,
            )
        elif args.action == "revoke":
            count = tokens.revoke(args.user)
            print(f"revoked {count} token(s) of {args.user}")
            return 0 if count else 1
        else:
            for user, groups, issued, revoked in tokens.listing():
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(issued))
                state = "revoked" if revoked else "valid"
                print(f"{user}\t{','.join(groups)}\t{when}\t{state}")
        return 0
    finally:
        pg.close()


def audit(config: ServerConfig, user: str | None, last: int, as_json: bool) -> int:
    from sealroom.core.store.postgres import PostgresPassages
    from sealroom.server.audit import TeamAudit

    pg = PostgresPassages(config.postgres)
    try:
        records = TeamAudit(pg.query).records(user, last)
    finally:
        pg.close()
    for r in records:
        if as_json:
            print(json.dumps(r))
        else:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["at"]))
            print(
                f"{r['seq']:>6} {when} {r['user']:<16} {r['event']:<16} {r['status']} {len(r['passages'])} passages"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = server_config.load(args.config)
        if args.command == "start":
            start(config, args.workers)
            return 0
        if args.command == "index":
            return index(config, args.every)
        if args.command == "health":
            return health(config, args.ca)
        if args.command == "token":
            return token(config, args)
        if args.command == "audit":
            return audit(config, args.user, args.n, args.json)
        from sealroom.server import backup

        if args.command == "backup":
            return backup.backup(config, args.dir)
        return backup.restore(config, args.dir)
    except SealroomError as exc:
        print(f"sealroom-server: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
