"""The control socket: while one process owns a data directory (lock.py), the user's other processes hand it
their commands here and get back what the command wrote, as it writes it, and its exit code.

Transport only (no Qt, no engine). A Unix-domain stream socket that only its user can open: `<data dir>/
control.sock`, or a hashed per-user name under $XDG_RUNTIME_DIR (or the temp folder) when that path is too
long for AF_UNIX. The socket is bound inside a fresh 0700 folder, set to 0600, then moved into place, so it
is never reachable with wider rights (no process-wide umask change under other threads). The server drops a
peer whose uid (SO_PEERCRED) is not its own; the client refuses a socket that is not its user's or that
group or others may open, and a server of another uid.

The protocol is JSON lines: the client sends one request ({"argv", "cwd", "isatty", "err_isatty"}); the
server answers with frames {"out": text} and {"err": text} as the command writes them, then {"exit": n}.
A command prints as it does in its own process: `sys.stdout` and `sys.stderr` are routed by thread, so
what the command's thread writes goes to its client and everything else to the real streams.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import stat
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from sealroom.core.runtime import logs
from sealroom.core.runtime.errors import SealroomError

SOCKET_NAME = "control.sock"
MAX_PATH_BYTES = 100  # sun_path holds 108 bytes on Linux, 104 on macOS, with its NUL
MAX_REQUEST_BYTES = 1 << 20
REQUEST_SECONDS = 10  # a client has this long to send its request
SEND_SECONDS = 300  # a client that reads nothing for this long is gone: the command ends as on a broken pipe


class ControlError(SealroomError):
    """The control socket cannot be used safely, or the serving process broke off."""


@dataclass(frozen=True)
class Request:
    """A command for the owner of the data directory: its arguments, where it was run, and whether the
    caller's stdout and stderr are terminals (the command prints as it would there)."""

    argv: list[str]
    cwd: str
    isatty: bool = False
    err_isatty: bool = False

    def to_line(self) -> bytes:
        fields = {"argv": self.argv, "cwd": self.cwd, "isatty": self.isatty, "err_isatty": self.err_isatty}
        return (json.dumps(fields) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> Request:
        data = json.loads(line)
        argv, cwd = data.get("argv"), data.get("cwd")
        if (
            not isinstance(argv, list)
            or not all(isinstance(a, str) for a in argv)
            or not isinstance(cwd, str)
        ):
            raise ValueError("a request needs argv (a list of strings) and cwd")
        return cls(argv, cwd, bool(data.get("isatty")), bool(data.get("err_isatty")))


Handler = Callable[[Request], int]


def _uid() -> int:
    return os.getuid()


def socket_path(home: Path) -> Path:
    """Where the owner of `home` listens: in `home` when the path fits AF_UNIX, else a per-user name hashed
    from `home` in $XDG_RUNTIME_DIR or the temp folder."""
    inside = home / SOCKET_NAME
    if len(os.fsencode(inside)) < MAX_PATH_BYTES:
        return inside
    digest = hashlib.sha256(os.fsencode(os.path.abspath(home))).hexdigest()[:16]
    name = f"sealroom-{_uid()}-{digest}.sock"
    for base in (os.environ.get("XDG_RUNTIME_DIR"), tempfile.gettempdir(), "/tmp"):
        if base and len(os.fsencode(os.path.join(base, name))) < MAX_PATH_BYTES:
            return Path(base) / name
    raise ControlError(f"no folder with a path short enough for the control socket of {home}")


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux); None where the OS does not say."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    size = struct.calcsize("3i")
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, size))
    return int(uid)


def check_socket(path: Path) -> None:
    """Refuse a socket that is not this user's, or that group or others may open."""
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"{path} is not a socket")
    if st.st_uid != _uid():
        raise ControlError(f"refusing the control socket {path}: it belongs to uid {st.st_uid}, not to you")
    if st.st_mode & 0o077:
        raise ControlError(
            f"refusing the control socket {path}: others may open it (mode {stat.S_IMODE(st.st_mode):o})"
        )


def answers(path: Path) -> bool:
    """Whether a process listens on `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        return True


# --- the client ---------------------------------------------------------------------------------------------
def forward(home: Path, request: Request, out: TextIO, err: TextIO) -> int | None:
    """Run `request` in the process that owns `home`, writing what the command writes to `out` and `err` as
    it comes; its exit code, or None when no process serves `home` (no socket, or a stale one)."""
    path = socket_path(home)
    try:
        check_socket(path)
    except FileNotFoundError:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with conn:
        conn.settimeout(10)
        try:
            conn.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        except OSError as exc:
            raise ControlError(f"the process that owns the data directory does not answer ({exc})") from None
        uid = peer_uid(conn)
        if uid is not None and uid != _uid():
            raise ControlError(f"refusing the control socket {path}: it is served by uid {uid}, not by you")
        conn.settimeout(None)  # an answer may take minutes (a model loading) before its first word
        with conn.makefile("rb") as frames:
            with contextlib.suppress(OSError):  # a server that dropped us sends no frame: said below
                conn.sendall(request.to_line())
            while line := _read(frames):
                frame = json.loads(line)
                if "exit" in frame:
                    return int(frame["exit"])
                stream = out if "out" in frame else err  # its errors (a closed pipe) are the caller's
                stream.write(frame.get("out", frame.get("err", "")))
                stream.flush()
    raise ControlError("the process that owns the data directory stopped before the command finished")


def _read(frames: BinaryIO) -> bytes:
    """The next frame; b"" when the server is gone (a connection reset or cut is the same as its end)."""
    try:
        return frames.readline()
    except OSError:
        return b""


# --- where a thread's output goes -------------------------------------------------------------------------
class Route:
    """One client's connection: what a command writes, sent as frames."""

    def __init__(self, conn: socket.socket, request: Request) -> None:
        self.conn = conn
        self.ttys = {"out": request.isatty, "err": request.err_isatty}
        self._lock = threading.Lock()

    def send(self, frame: dict[str, str | int]) -> None:
        data = (json.dumps(frame) + "\n").encode()  # ASCII: a file name that is not UTF-8 travels escaped
        with self._lock:
            try:
                self.conn.sendall(data, getattr(socket, "MSG_NOSIGNAL", 0))
            except OSError as exc:  # the client is gone (or stopped reading): as a closed pipe would
                raise BrokenPipeError(f"the command's caller is gone ({exc})") from None


_local = threading.local()


def current_route() -> Route | None:
    return getattr(_local, "route", None)


@contextlib.contextmanager
def routed(route: Route | None) -> Iterator[None]:
    """Send what this thread writes to `route` (None: to the real streams) while inside."""
    before = current_route()
    _local.route = route
    try:
        yield
    finally:
        _local.route = before


def carry(call: Callable[[], int]) -> Callable[[], int]:
    """`call`, writing to this thread's client from whichever thread runs it (a worker lane, say)."""
    route = current_route()

    def run() -> int:
        with routed(route):
            return call()

    return run


class RoutedStream:
    """Stands in for sys.stdout or sys.stderr: a forwarded command's thread writes to its client, every other
    thread to the real stream."""

    def __init__(self, real: TextIO | None, key: str) -> None:
        self.real = real
        self.key = key  # "out" or "err"

    def write(self, text: str) -> int:
        route = current_route()
        if route is None:
            return self.real.write(text) if self.real is not None else len(text)
        if text:
            route.send({self.key: text})
        return len(text)

    def flush(self) -> None:
        if current_route() is None and self.real is not None:
            self.real.flush()

    def isatty(self) -> bool:
        route = current_route()
        if route is not None:
            return route.ttys[self.key]
        return self.real is not None and self.real.isatty()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        if current_route() is not None or self.real is None:
            raise OSError("a forwarded command's stream has no file descriptor")
        return self.real.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.real, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:
        return getattr(self.real, "errors", None) or "strict"

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


_routing_lock = threading.Lock()
_routing_users = 0


def install_routing(user: bool = True) -> None:
    """Route sys.stdout and sys.stderr by thread (once; every server shares it). Each request calls it again
    (`user` False): a stream set after the server started (a test's capture, say) is wrapped in turn."""
    global _routing_users
    with _routing_lock:
        _routing_users += user
        if not isinstance(sys.stdout, RoutedStream):
            sys.stdout = RoutedStream(sys.stdout, "out")
        if not isinstance(sys.stderr, RoutedStream):
            sys.stderr = RoutedStream(sys.stderr, "err")


def uninstall_routing() -> None:
    global _routing_users
    with _routing_lock:
        _routing_users = max(0, _routing_users - 1)
        if _routing_users:
            return
        if isinstance(sys.stdout, RoutedStream):
            sys.stdout = sys.stdout.real
        if isinstance(sys.stderr, RoutedStream):
            sys.stderr = sys.stderr.real


# --- the server ---------------------------------------------------------------------------------------------
class ControlServer:
    """Listens on `home`'s control socket and runs each request with `handler` on a thread of its own, its
    output routed to the client. `uid`: whose connections are served (this process's own)."""

    def __init__(self, home: Path, handler: Handler, uid: int | None = None) -> None:
        self.path = socket_path(home)
        self.handler = handler
        self.uid = _uid() if uid is None else uid
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._identity: tuple[int, int] | None = None
        self._threads: list[threading.Thread] = []
        self._accepting: threading.Thread | None = None

    def start(self) -> Path:
        self._clear_stale()
        self._listener = self._bind()
        install_routing()
        self._accepting = threading.Thread(target=self._accept, name="sealroom-control", daemon=True)
        self._accepting.start()
        return self.path

    def _clear_stale(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlError(
                f"{self.path} is in the way of the control socket and is not one; move it away"
            )
        if answers(self.path):
            raise ControlError(f"another process already serves {self.path}")
        os.unlink(self.path)  # left by a process that ended without removing it
        logs.event("stale control socket removed", path=str(self.path))

    def _bind(self) -> socket.socket:
        staging = Path(tempfile.mkdtemp(prefix=".s", dir=self.path.parent))  # 0700: nobody else gets in
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(staging / "s"))
            os.chmod(staging / "s", 0o600)
            os.rename(staging / "s", self.path)
            st = os.lstat(self.path)
            self._identity = (st.st_dev, st.st_ino)
            listener.listen(8)
            listener.settimeout(0.5)  # the accept loop looks at the stop switch twice a second
        except BaseException:
            listener.close()
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return listener

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None and not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            uid = peer_uid(conn)
            if uid is not None and uid != self.uid:
                logs.problem("control connection refused", uid=uid)
                conn.close()
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="sealroom-command", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(REQUEST_SECONDS)
            try:
                with conn.makefile("rb") as reader:
                    line = reader.readline(MAX_REQUEST_BYTES + 1)
                if not line.endswith(b"\n"):
                    return  # nothing (a probe), too long, or cut off
                request = Request.from_line(line)
            except (OSError, ValueError):
                return
            conn.settimeout(SEND_SECONDS)
            install_routing(user=False)
            route = Route(conn, request)
            with routed(route):
                try:
                    code = self.handler(request)
                except BrokenPipeError:
                    return
                except (Exception, SystemExit):  # as an uncaught error ends a process: traceback, exit 1
                    with contextlib.suppress(BrokenPipeError):
                        route.send({"err": traceback.format_exc()})
                    code = 1
            with contextlib.suppress(BrokenPipeError):
                route.send({"exit": int(code)})

    def stop(self, wait: float = 5.0) -> None:
        """Stop listening and remove the socket; wait up to `wait` seconds for commands under way."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:  # ours, not a successor's
                os.unlink(self.path)
        if self._accepting is not None:
            self._accepting.join(2)
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._accepting is not None:
            uninstall_routing()

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
