"""Export destinations: a folder (local, a mounted share, a drive letter) or an SMB share.

Destinations are named and kept in `destinations.json` in the data directory: names,
paths, hosts and user names only. SMB passwords live in the OS keyring (`secrets_store`).
Writers put a file in place atomically (a temporary name, then a rename that never replaces)
and say when a file of that name already exists, so the outbox can compare contents.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import re
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from . import offline, secrets_store
from .errors import SealroomError, UsageError

NAME_RE = re.compile(r"^[\w][\w .-]{0,63}$")
SMB_PORT = 445
CONNECT_TIMEOUT_S = 10


class Offline(SealroomError):
    """The destination cannot be reached now (off the office network, server down): try again later."""


class Refused(SealroomError):
    """The destination will not take the file as configured (policy, password, permissions)."""


@dataclass(frozen=True)
class Destination:
    name: str
    kind: str  # "folder" or "smb"
    path: str = ""  # folder: an absolute path; smb: the directory inside the share
    host: str = ""
    share: str = ""
    port: int = SMB_PORT
    user: str = ""

    @property
    def target(self) -> str:
        if self.kind == "folder":
            return self.path
        port = f":{self.port}" if self.port != SMB_PORT else ""
        return f"//{self.host}{port}/{self.share}" + (f"/{self.path}" if self.path else "")

    def describe(self) -> str:
        who = f" as {self.user}" if self.user else ""
        return f"{self.name}: {'folder' if self.kind == 'folder' else 'SMB share'} {self.target}{who}"

    @property
    def secret_account(self) -> str:
        return f"smb:{self.user}@{self.host}:{self.port}/{self.share}"


def parse_smb(url: str) -> tuple[str, int, str, str]:
    """`//server[:port]/share/dir` or `\\\\server\\share\\dir` → (host, port, share, dir)."""
    text = url.replace("\\", "/")
    if text.lower().startswith("smb:"):
        text = text[4:]
    if not text.startswith("//"):
        raise UsageError(f"an SMB share is written //server/share/folder, not {url}")
    parts = [p for p in text[2:].split("/") if p]
    if len(parts) < 2:
        raise UsageError(f"an SMB share needs a server and a share name: //server/share/folder, not {url}")
    host, _, port = parts[0].partition(":")
    if any(p in (".", "..") for p in parts[1:]):
        raise UsageError(f"'.' and '..' are not allowed in a share path: {url}")
    try:
        number = int(port) if port else SMB_PORT
    except ValueError:
        raise UsageError(f"not a port number: {port}") from None
    return host, number, parts[1], "/".join(parts[2:])


class Destinations:
    """The configured destinations of one data directory."""

    def __init__(self, home: Path) -> None:
        self.path = home / "destinations.json"

    def all(self) -> list[Destination]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise SealroomError(f"cannot read {self.path}: {exc}") from None
        return [Destination(**d) for d in data.get("destinations", [])]

    def get(self, name: str) -> Destination:
        for d in self.all():
            if d.name.casefold() == name.casefold():
                return d
        known = ", ".join(d.name for d in self.all()) or "none yet: add one with `sealroom destinations add`"
        raise UsageError(f"no export destination named '{name}' (known: {known})")

    def add(self, dest: Destination, password: str | None = None) -> Destination:
        if not NAME_RE.match(dest.name):
            raise UsageError("a destination name is 1-64 letters, digits, spaces, '.', '-' or '_'")
        if any(d.name.casefold() == dest.name.casefold() for d in self.all()):
            raise UsageError(f"there is already a destination named '{dest.name}'")
        if dest.kind == "folder":
            if not os.path.isabs(dest.path):
                raise UsageError(f"the folder must be an absolute path: {dest.path}")
        elif dest.kind == "smb":
            if not dest.user:
                raise UsageError("an SMB destination needs --user")
            if password is None:
                raise UsageError("an SMB destination needs a password")
            secrets_store.store(dest.secret_account, "", password)  # fails in one line without a keyring
        else:
            raise UsageError(f"unknown destination kind {dest.kind}")
        self._save([*self.all(), dest])
        return dest

    def remove(self, name: str) -> Destination:
        dest = self.get(name)
        self._save([d for d in self.all() if d.name != dest.name])
        if dest.kind == "smb":
            secrets_store.delete(dest.secret_account)
        return dest

    def _save(self, items: list[Destination]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"destinations": [asdict(d) for d in items]}, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)


def check_policy(dest: Destination, settings: Any) -> None:
    """Refuse, before any connection, a destination the IT policy does not allow."""
    if not settings.export_enabled:
        raise Refused("exports are turned off by your IT policy")
    patterns = settings.export_destinations
    if patterns and not any(
        fnmatch.fnmatchcase(value.casefold(), p.casefold())
        for p in patterns
        for value in (dest.name, dest.target, dest.host or dest.path)
        if value
    ):
        raise Refused(f"destination '{dest.name}' ({dest.target}) is not among those your IT policy allows")
    if dest.kind == "smb" and dest.host.casefold() not in {h.casefold() for h in settings.allowed_hosts}:
        raise Refused(
            f"SMB host '{dest.host}' is not in the IT policy's allowed_hosts: Sealroom connects to no "
            "other machine unless IT lists it"
        )


class Writer(Protocol):
    def existing_sha256(self, name: str) -> str | None: ...
    def put(self, name: str, data: bytes) -> bool: ...  # False: a file of that name exists
    def remove(self, name: str) -> None: ...
    def close(self) -> None: ...


def writer(dest: Destination) -> Writer:
    return FolderWriter(dest) if dest.kind == "folder" else SmbWriter(dest)


def _inside(name: str) -> str:
    """A file name written into a destination: one plain component, never a path."""
    if not name or name in (".", "..") or any(c in name for c in "/\\:\0") or name != name.strip():
        raise SealroomError(f"unsafe export file name refused: {name!r}")
    return name


class FolderWriter:
    def __init__(self, dest: Destination) -> None:
        self.root = Path(dest.path)

    def _path(self, name: str) -> Path:
        path = self.root / _inside(name)
        if path.parent != self.root:
            raise SealroomError(f"unsafe export file name refused: {name!r}")
        return path

    def _check_root(self) -> None:
        if not self.root.is_dir():  # an unmounted share or unplugged drive: wait for it
            raise Offline(f"folder {self.root} is not there (share not mounted or drive not connected)")

    def existing_sha256(self, name: str) -> str | None:
        self._check_root()
        try:
            return hashlib.sha256(self._path(name).read_bytes()).hexdigest()
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise Refused(f"cannot read {self._path(name)}: permission denied") from exc

    def put(self, name: str, data: bytes) -> bool:
        self._check_root()
        final = self._path(name)
        tmp = self._path(f".{name}.part")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                with contextlib.suppress(OSError):  # an export is for colleagues: readable on the share
                    os.fchmod(f.fileno(), 0o644)
            try:
                os.link(tmp, final)  # never replaces: fails when the name exists
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                if final.exists():  # a file system without hard links (FAT, some shares)
                    return False
                os.rename(tmp, final)
                return True
        except PermissionError as exc:
            raise Refused(f"cannot write into {self.root}: permission denied") from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise Offline(f"no space left in {self.root}") from exc
            raise
        finally:
            tmp.unlink(missing_ok=True)

    def remove(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def close(self) -> None:
        pass


LOGON = {
    0xC000006D: "wrong user name or password",
    0xC0000064: "unknown user",
    0xC0000072: "account disabled",
}
LOGON |= {
    0xC0000234: "account locked out",
    0xC0000071: "password expired",
    0xC0000224: "password must change",
}
DENIED = {0xC0000022: "access denied", 0xC00000CC: "no such share", 0xC0000225: "no such share or folder"}
DENIED |= {0xC000003A: "no such folder on the share", 0xC0000034: "no such folder on the share"}


def allow_host(dest: Destination) -> None:
    """Resolve an SMB host the policy allows (checked before) and let the socket guard pass its
    addresses; raises OSError when the name does not resolve."""
    infos = socket.getaddrinfo(dest.host, dest.port, type=socket.SOCK_STREAM)
    offline.allow_hosts([str(info[4][0]) for info in infos])


class SmbWriter:
    """Writes into `\\\\host\\share\\dir` with smbprotocol, the password read from the keyring."""

    def __init__(self, dest: Destination) -> None:
        self.dest = dest
        self._cache: dict[str, Any] = {}
        self._ready = False  # the host's addresses are let through the socket guard
        self._password: str | None = None  # read from the keyring once per writer
        self._dir_made = False

    def _unc(self, name: str = "") -> str:
        parts = [self.dest.share, *[p for p in self.dest.path.split("/") if p]]
        if name:
            parts.append(_inside(name))
        return "\\\\" + self.dest.host + "\\" + "\\".join(parts)

    def _kw(self) -> dict[str, Any]:
        if self._password is None:
            self._password = secrets_store.get(self.dest.secret_account)
        password = self._password
        if password is None:
            raise Refused(
                f"no password for '{self.dest.name}' in the keyring (unlock the keyring, or add the "
                "destination again)"
                if secrets_store.available()
                else secrets_store.NO_KEYRING
            )
        return {
            "username": self.dest.user,
            "password": password,
            "port": self.dest.port,
            "connection_cache": self._cache,
            "connection_timeout": CONNECT_TIMEOUT_S,
        }

    def _call(self, fn: Any, *args: Any, **extra: Any) -> Any:
        import smbclient
        from smbprotocol.exceptions import SMBException, SMBOSError

        if not self._ready:
            self._resolve()
        try:
            return fn(smbclient, *args, **self._kw(), **extra)
        except SMBOSError as exc:
            status = int(exc.ntstatus or 0)
            if status in LOGON:
                raise Refused(f"{self.dest.target}: {LOGON[status]}") from None
            if status in DENIED:
                raise Refused(f"{self.dest.target}: {DENIED[status]}") from None
            raise
        except (ValueError, TimeoutError, ConnectionError) as exc:
            self._reset()
            raise Offline(f"{self.dest.target} is not reachable ({_short(exc)})") from None
        except SMBException as exc:
            self._reset()
            raise Offline(f"{self.dest.target}: connection lost ({type(exc).__name__})") from None

    def _resolve(self) -> None:
        try:
            allow_host(self.dest)
        except OSError as exc:
            raise Offline(f"{self.dest.target}: cannot resolve {self.dest.host} ({_short(exc)})") from None
        self._ready = True

    def existing_sha256(self, name: str) -> str | None:
        def read(smb: Any, path: str, **kw: Any) -> str | None:
            try:
                with smb.open_file(path, mode="rb", **kw) as f:
                    return hashlib.sha256(f.read()).hexdigest()
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return None
                raise

        if not self._dir_made:
            self._call(lambda smb, **kw: smb.makedirs(self._unc(), exist_ok=True, **kw))
            self._dir_made = True
        return self._call(read, self._unc(name))

    def put(self, name: str, data: bytes) -> bool:
        tmp, final = self._unc(f".{name}.part"), self._unc(name)

        def write(smb: Any, **kw: Any) -> bool:
            with smb.open_file(tmp, mode="wb", **kw) as f:
                f.write(data)
            try:
                smb.rename(tmp, final, **kw)  # SMB rename never replaces an existing file
                return True
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
                smb.remove(tmp, **kw)
                return False

        return self._call(write)

    def remove(self, name: str) -> None:
        self._call(lambda smb, **kw: smb.remove(self._unc(name), **kw))

    def _reset(self) -> None:
        import smbclient

        with contextlib.suppress(Exception):
            smbclient.reset_connection_cache(fail_on_error=False, connection_cache=self._cache)
        self._cache = {}

    def close(self) -> None:
        self._reset()


def _short(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1][:120] or type(exc).__name__
