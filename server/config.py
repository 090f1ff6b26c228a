"""The service's configuration: one TOML file IT writes (`/etc/sealroom/server.toml`, or `--config`).

    [server]
    listen = "0.0.0.0:8443"                    # host:port of the HTTPS service
    certificate = "/etc/sealroom/tls/server.pem"  # IT's certificate (chain) and its key; both or neither
    key = "/etc/sealroom/tls/server.key"
    postgres = "postgresql://sealroom@db.firm.example/sealroom"
    chroma = "http://chroma.firm.example:8000"
    chroma_path = "/var/lib/chroma"           # Chroma's persistent folder, for backup and restore
    llm = "http://llm.firm.example:8080"      # llama.cpp's server; absent: the quotes are the answer
    data = "/var/lib/sealroom-server"         # the indexer's queue and working files

    [folders]                                 # each shared folder, and the groups allowed to read it
    "/srv/shares/matter-1041" = ["matter-1041"]
    "/srv/shares/handbook" = ["staff", "partners"]

A folder's groups should be the directory groups that hold read on the share (docs/team-mode.md). A
folder with no groups is indexed but read by no one: the wall fails closed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sealroom.core.runtime.errors import UsageError

DEFAULT_CONFIG = Path("/etc/sealroom/server.toml")
DEFAULT_PORT = 8443


@dataclass
class ServerConfig:
    postgres: str
    chroma: str
    data: Path
    listen: str = f"127.0.0.1:{DEFAULT_PORT}"
    certificate: str = ""
    key: str = ""
    chroma_path: str = ""
    llm: str = ""
    llm_context: int = 2048  # the llama.cpp server's --n_ctx (its API does not say it)
    folders: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""  # the file it was read from

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def chroma_address(self) -> tuple[str, int]:
        parts = urlsplit(self.chroma if "//" in self.chroma else f"http://{self.chroma}")
        return parts.hostname or "127.0.0.1", parts.port or 8000

    @property
    def tls(self) -> bool:
        return bool(self.certificate)


def load(path: str | os.PathLike[str] | None = None) -> ServerConfig:
    """The configuration in `path` (default: $SEALROOM_SERVER_CONFIG, then /etc/sealroom/server.toml),
    checked: a missing key or a malformed value is a `UsageError` naming it."""
    where = Path(path or os.environ.get("SEALROOM_SERVER_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no service configuration at {where} (see docs/team-mode.md)") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"the service configuration {where} cannot be read: {exc}") from None
    server = raw.get("server", {})
    unknown = set(server) - {f for f in ServerConfig.__dataclass_fields__ if f not in ("folders", "source")}
    if unknown:
        raise UsageError(f"{where}: unknown key(s) in [server]: {', '.join(sorted(unknown))}")
    for required in ("postgres", "chroma", "data"):
        if not isinstance(server.get(required), str) or not server[required]:
            raise UsageError(f'{where}: [server] needs {required} = "..."')
    folders: dict[str, list[str]] = {}
    for folder, groups in raw.get("folders", {}).items():
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            raise UsageError(f"{where}: [folders] {folder!r} must be a list of group names")
        folders[os.path.abspath(folder)] = list(dict.fromkeys(groups))
    config = ServerConfig(
        **{k: v for k, v in server.items() if k != "data"}, data=Path(server["data"]), folders=folders
    )
    config.source = str(where)
    if ":" not in config.listen or not config.listen.rsplit(":", 1)[1].isdigit():
        raise UsageError(f"{where}: listen must be host:port, not {config.listen!r}")
    if bool(config.certificate) != bool(config.key):
        raise UsageError(f"{where}: certificate and key go together (TLS needs both)")
    return config
