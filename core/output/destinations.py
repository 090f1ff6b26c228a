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
import secrets
import socket
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sealroom.core.runtime import offline, secrets_store
from sealroom.core.runtime.config import Settings, under_policy
from sealroom.core.runtime.errors import SealroomError, UsageError

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
        """One password per destination: a second destination on the same share never replaces it."""
        return f"smb:{self.name.casefold()}:{self.user}@{self.host}:{self.port}/{self.share}"

    @property
    def shared_secret_account(self) -> str:
        """Where passwords were kept before they were per destination (read, never written)."""
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
    if not 1 <= number <= 65535:
        raise UsageError(f"a port number is 1-65535, not {number}")
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


def pointed_at(dest: Destination) -> list[str]:
    """What a destination writes into, as the policy judges it: a folder's real path (links followed), an
    SMB share's //host/share/path and host. Never its name, which the user picks."""
    if dest.kind == "folder":
        return [os.path.realpath(dest.path)]
    return [dest.target, dest.host]


def _resolved_pattern(pattern: str) -> str:
    """A folder pattern with the links in its fixed part followed, as the destination's path is."""
    if not pattern.startswith("/") or pattern.startswith("//"):  # a name pattern, or an SMB share's
        return pattern
    fixed = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    head = fixed if fixed.endswith("/") else os.path.dirname(fixed)
    if not head or head == "/":
        return pattern
    return os.path.realpath(head) + pattern[len(head.rstrip("/")) :]


def check_policy(dest: Destination, settings: Settings) -> None:
    """Refuse, before any connection, a destination the IT policy does not allow: the policy is read
    again here (`under_policy`) and judged on what the destination points at (`pointed_at`)."""
    settings = under_policy(settings)
    if not settings.export_enabled:
        raise Refused("exports are turned off by your IT policy")
    patterns, points = settings.export_destinations, pointed_at(dest)
    if patterns and not any(
        fnmatch.fnmatchcase(value.casefold(), _resolved_pattern(p).casefold())
        for p in patterns
        for value in points
        if value
    ):
        where = " → ".join(dict.fromkeys([dest.target, points[0]]))
        raise Refused(f"destination '{dest.name}' ({where}) is not among those your IT policy allows")
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


def _has_default_acl(fd: int) -> bool:
    """Whether the folder has a default POSIX ACL: then it, not Sealroom's umask, sets a new file's access."""
    try:
        return bool(os.getxattr(fd, "system.posix_acl_default"))
    except (OSError, AttributeError):
        return False


#: `existing_sha256` of a name taken by something that is not a plain file (a link, pipe, device,
#: folder): the outbox delivers under the next free name instead.
NOT_A_FILE = "not-a-regular-file"


class FolderWriter:
    """Writes into a folder through a handle on it, never following a link: the folder is opened once (its
    real path, as the policy judged it), a temporary file is created there under a random name with
    O_EXCL | O_NOFOLLOW, and hard-linked to its final name (which never replaces and never follows a link
    planted there). A name taken by a link, a pipe or a device is never opened: it counts as taken
    (`NOT_A_FILE`), so the outbox uses the next free name."""

    def __init__(self, dest: Destination) -> None:
        self.root = Path(os.path.realpath(dest.path))
        self._fd: int | None = None

    def _dir(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:  # an unmounted share or unplugged drive: wait for it
                raise Offline(
                    f"folder {self.root} is not there (share not mounted or drive not connected)"
                ) from None
            except OSError as exc:
                raise self._refused(exc, "open") from None
        return self._fd

    def _refused(self, exc: OSError, what: str, name: str = "") -> SealroomError:
        where = f"{self.root}/{name}" if name else str(self.root)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return Offline(f"no space left in {self.root}")
        if exc.errno == errno.EROFS:
            return Refused(f"cannot write into {self.root}: the folder is read-only")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return Refused(f"cannot {what} {where}: permission denied")
        if exc.errno == errno.ELOOP:
            return Refused(f"{where} is a link: Sealroom never writes through links in a destination")
        if exc.errno in (errno.ENOTDIR, errno.EISDIR):  # will not get better by waiting either
            return Refused(f"cannot {what} {where}: {os.strerror(exc.errno)}")
        return exc if isinstance(exc, SealroomError) else Offline(f"cannot {what} {where}: {exc.strerror}")

    def existing_sha256(self, name: str) -> str | None:
        fd = self._dir()
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO does not block the open
        try:
            if not stat.S_ISREG(os.lstat(_inside(name), dir_fd=fd).st_mode):
                return NOT_A_FILE  # a device is never opened
            f = os.open(name, flags, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return NOT_A_FILE  # a link planted at the name: taken, never followed
            raise self._refused(exc, "read", name) from None
        try:
            if not stat.S_ISREG(os.fstat(f).st_mode):
                return NOT_A_FILE  # a pipe, device or folder: taken, never read
            digest = hashlib.sha256()
            while block := os.read(f, 1 << 20):
                digest.update(block)
            return digest.hexdigest()
        finally:
            os.close(f)

    def put(self, name: str, data: bytes) -> bool:
        fd, final = self._dir(), _inside(name)
        tmp = f".{final}.{secrets.token_hex(6)}.part"  # unpredictable: nothing can be planted there
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        acl = _has_default_acl(fd)
        try:
            f = os.open(tmp, flags, 0o666 if acl else 0o600, dir_fd=fd)
        except OSError as exc:
            raise self._refused(exc, "write into") from None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(f, view) :]
                os.fsync(f)
                if not acl:  # the folder's own read/write bits, as its other files have: 0755 -> 0644
                    with contextlib.suppress(OSError):
                        os.fchmod(f, stat.S_IMODE(os.fstat(fd).st_mode) & 0o666 | 0o600)
            finally:
                os.close(f)
            try:
                # never replaces, and never follows a link planted at the final name
                os.link(tmp, final, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                try:  # a file system without hard links (FAT, some shares)
                    os.lstat(final, dir_fd=fd)
                    return False
                except FileNotFoundError:
                    os.rename(tmp, final, src_dir_fd=fd, dst_dir_fd=fd)
                    return True
        except OSError as exc:
            raise self._refused(exc, "write into") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_inside(name), dir_fd=self._dir())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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


STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
#: A name that exists but cannot be opened as a file: a link out of the share (Samba's "wide links = no"
#: answers path-not-found or access-denied for it), a folder. The export takes the next free name.
NAME_TAKEN = {0xC000003A, 0xC0000022, 0xC00000BA, 0xC0000275, 0xC000026E}
FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_DEVICE, FILE_ATTRIBUTE_REPARSE_POINT = 0x10, 0x40, 0x400
REGULAR_ONLY = FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE | FILE_ATTRIBUTE_REPARSE_POINT


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
            self._password = secrets_store.get(self.dest.secret_account) or secrets_store.get(
                self.dest.shared_secret_account
            )
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
            from smbprotocol.exceptions import SMBOSError

            try:
                if smb.lstat(path, **kw).st_file_attributes & REGULAR_ONLY:
                    return NOT_A_FILE  # a link (reparse point), folder or device: taken, never read
                with smb.open_file(path, mode="rb", **kw) as f:
                    return hashlib.sha256(f.read()).hexdigest()
            except SMBOSError as exc:
                if int(exc.ntstatus or 0) == STATUS_OBJECT_NAME_NOT_FOUND:
                    return None
                if int(exc.ntstatus or 0) in NAME_TAKEN:  # a link the server will not follow (wide links)
                    return NOT_A_FILE
                raise
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return None
                raise

        if not self._dir_made:
            self._call(lambda smb, **kw: smb.makedirs(self._unc(), exist_ok=True, **kw))
            self._dir_made = True
        return self._call(read, self._unc(name))

    def put(self, name: str, data: bytes) -> bool:
        tmp = self._unc(f".{_inside(name)}.{secrets.token_hex(6)}.part")  # unpredictable, created new
        final = self._unc(name)

        def write(smb: Any, **kw: Any) -> bool:
            with smb.open_file(tmp, mode="xb", **kw) as f:
                f.write(data)
            try:
                smb.rename(tmp, final, **kw)  # SMB rename never replaces an existing file
                return True
            except OSError as exc:
                status = int(getattr(exc, "ntstatus", 0) or 0)
                if exc.errno != errno.EEXIST and status not in NAME_TAKEN | {STATUS_OBJECT_NAME_NOT_FOUND}:
                    raise
                with contextlib.suppress(OSError):  # the name is taken (by a link the server will not
                    smb.remove(tmp, **kw)  # follow, say): the outbox tries the next name
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
