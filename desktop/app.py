"""`sealroom-desktop`: one instance per data folder, window first, engine and models after."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

NO_DISPLAY = (
    "sealroom-desktop: no display found (DISPLAY and WAYLAND_DISPLAY are unset); "
    "use the command line instead: `sealroom --help`"
)


def has_display() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def instance_name(home: Path) -> str:
    """The local-socket name of the instance that owns `home`."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    return f"sealroom-{os.getuid() if hasattr(os, 'getuid') else 'user'}-{digest}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sealroom-desktop", description="Sealroom, the desktop app")
    parser.add_argument("--quit-after", type=float, help=argparse.SUPPRESS)  # seconds; for start-up checks
    args = parser.parse_args(argv)
    if not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 1

    from sealroom.core.runtime import offline

    offline.enforce()  # before Qt and the engine load anything
    from PySide6.QtCore import QTimer
    from PySide6.QtNetwork import QLocalServer, QLocalSocket
    from PySide6.QtWidgets import QApplication

    from sealroom.core.runtime.paths import data_dir

    from . import ops
    from .host import EngineHost
    from .window import MainWindow

    home = data_dir()
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Sealroom")
    app.setQuitOnLastWindowClosed(False)  # the tray keeps watching; MainWindow quits explicitly
    name = instance_name(home)

    probe = QLocalSocket()
    probe.connectToServer(name)
    if probe.waitForConnected(500):
        probe.write(b"show\n")
        probe.flush()
        probe.waitForBytesWritten(1000)
        probe.disconnectFromServer()
        print("Sealroom is already running; brought its window forward.", file=sys.stderr)
        return 0
    QLocalServer.removeServer(name)  # a socket left by a crashed instance
    server = QLocalServer()
    server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
    server.listen(name)

    ops.install()
    host = EngineHost(home)
    window = MainWindow(host)

    def forward() -> None:
        conn = server.nextPendingConnection()
        if conn is not None:
            conn.readyRead.connect(window.bring_forward)
            conn.disconnected.connect(conn.deleteLater)
        window.bring_forward()

    server.newConnection.connect(forward)
    window.show()
    app.processEvents()
    host.window_visible_ms = round((time.perf_counter() - STARTED) * 1000)
    print(f"window visible after {host.window_visible_ms} ms", file=sys.stderr)
    QTimer.singleShot(0, host.start)
    if args.quit_after:
        QTimer.singleShot(int(args.quit_after * 1000), window.quit)
    code = app.exec()
    host.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
