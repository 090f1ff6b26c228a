"""Real services for the output tests: a Samba server on loopback and a Secret Service keyring.

Both come from Debian's packages (`make test` installs `samba`, `gnome-keyring` and `dbus`):
`smbd` runs in the foreground on 127.0.0.1 at a free high port with its own smb.conf, passdb
and state under a temporary directory; `gnome-keyring-daemon` runs inside `dbus-run-session`,
unlocked, with its keyrings in a temporary directory, and this process talks to it through
DBUS_SESSION_BUS_ADDRESS.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SMB_USER = "sealroom-smbtest"
SMB_PASSWORD = "Tr0ub4dor&3-canary-7f1c"  # grepped for in every file Sealroom writes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, up: bool, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not come {'up' if up else 'down'}")


@dataclass
class Samba:
    root: Path
    conf: Path
    share: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"//127.0.0.1:{self.port}/docs/exports"

    @property
    def folder(self) -> Path:
        return self.share / "exports"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["smbd", "--foreground", "--no-process-group", "-s", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "smbd.err", "ab"),  # noqa: SIM115 - lives as long as smbd
            start_new_session=True,
        )
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        subprocess.run(["pkill", "-f", f"^smbd --foreground --no-process-group -s {self.conf}$"], check=False)
        _wait_port(self.port, up=False)

    def files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.folder.glob("*")) if p.is_file()}

    def clear(self) -> None:
        for p in self.folder.glob("*"):
            p.unlink()


@pytest.fixture(scope="session")
def samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samba]:
    if os.geteuid() != 0:
        pytest.skip("the Samba fixture runs smbd and adds a user: it needs root (CI runs as root)")
    assert shutil.which("smbd"), "smbd is missing: `make test` installs the samba package"
    root = tmp_path_factory.mktemp("samba")
    for d in ("share/exports", "private", "state", "cache", "lock", "pid", "log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    port = _free_port()
    conf = root / "smb.conf"
    conf.write_text(
        f"""[global]
  server role = standalone server
  smb ports = {port}
  interfaces = 127.0.0.1
  bind interfaces only = yes
  passdb backend = tdbsam:{root}/private/passdb.tdb
  private dir = {root}/private
  state directory = {root}/state
  cache directory = {root}/cache
  lock directory = {root}/lock
  pid directory = {root}/pid
  ncalrpc dir = {root}/state/ncalrpc
  log file = {root}/log/log.%m
  disable netbios = yes
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  server min protocol = SMB2
[docs]
  path = {root}/share
  read only = no
  force user = root
"""
    )
    if subprocess.run(["id", SMB_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SMB_USER], check=True)
    subprocess.run(
        ["smbpasswd", "-c", str(conf), "-s", "-a", SMB_USER],
        input=f"{SMB_PASSWORD}\n{SMB_PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    server = Samba(root, conf, root / "share", port)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gnome-keyring-daemon in dbus-run-session, unlocked; its bus address is set for this process."""
    for tool in ("dbus-run-session", "gnome-keyring-daemon"):
        assert shutil.which(tool), f"{tool} is missing: `make test` installs dbus and gnome-keyring"
    root = tmp_path_factory.mktemp("keyring")
    for d in ("data", "run", "config"):
        (root / d).mkdir(mode=0o700)
    addr = root / "bus-address"
    env = dict(
        os.environ,
        HOME=str(root),
        XDG_DATA_HOME=str(root / "data"),
        XDG_RUNTIME_DIR=str(root / "run"),
        XDG_CONFIG_HOME=str(root / "config"),
    )
    proc = subprocess.Popen(
        [
            "dbus-run-session",
            "--",
            "sh",
            "-c",
            f'echo "$DBUS_SESSION_BUS_ADDRESS" > {addr}; '
            "printf 'keyring-unlock' | exec gnome-keyring-daemon --unlock --components=secrets --foreground",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "daemon.err", "ab"),  # noqa: SIM115 - lives as long as the daemon
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while not (addr.exists() and addr.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    address = addr.read_text().strip()
    old = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    import keyring
    import keyring.backend
    import keyring.core

    with contextlib.suppress(KeyError):  # keyring probes its backends once per process
        keyring.backend.get_all_keyring.reset()

    while time.monotonic() < deadline:  # the daemon takes a moment to claim its bus name
        keyring.core.init_backend()
        try:
            keyring.set_password("Sealroom-fixture", "probe", "ok")
            if keyring.get_password("Sealroom-fixture", "probe") == "ok":
                break
        except Exception:
            time.sleep(0.2)
    else:
        raise RuntimeError(
            f"gnome-keyring-daemon did not come up: {(root / 'daemon.err').read_text()[-500:]}"
        )
    yield address
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)
    if old is None:
        os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    else:
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = old
    with contextlib.suppress(Exception):  # no bus any more: keyring finds no backend, as before
        with contextlib.suppress(KeyError):
            keyring.backend.get_all_keyring.reset()
        keyring.core.init_backend()
