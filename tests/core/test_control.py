"""The control socket (core/runtime/control.py) in-process: only its user may open it, what a command writes
streams back as it is written with its exit code, a stale socket is replaced, a data folder whose path is too
long for AF_UNIX gets one elsewhere; and cli.serve runs a handed-over command as the command line would."""

from __future__ import annotations

import io
import os
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealroom.core import cli
from sealroom.core.runtime import control
from sealroom.core.runtime.control import ControlError, ControlServer, Request

pytestmark = pytest.mark.unit


@pytest.fixture
def short_home() -> Iterator[Path]:
    """A data folder with a path short enough for AF_UNIX (pytest's tmp_path can be long)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="sr-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def ask(home: Path, *argv: str, isatty: bool = False) -> tuple[int | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = control.forward(home, Request(list(argv), "/", isatty=isatty), out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_socket_is_the_users_alone_and_goes_with_the_server(short_home: Path):
    with ControlServer(short_home, lambda r: 0) as server:
        assert server.path == short_home / "control.sock"
        st = os.lstat(server.path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
        assert [p.name for p in short_home.iterdir()] == ["control.sock"]  # no staging folder left
    assert not server.path.exists()
    assert ask(short_home, "status") == (None, "", "")  # nobody serves: the caller says what it always said


def test_output_streams_back_as_written_with_the_exit_code(short_home: Path):
    heard = threading.Event()

    def handler(request: Request) -> int:
        print("first line")
        if not heard.wait(10):  # the client has it before the command goes on: streamed, not buffered
            return 99
        sys.stderr.write("a warning\n")
        print("tty" if sys.stdout.isatty() else "pipe", request.argv, request.cwd)
        return 3

    class Out(io.StringIO):
        def write(self, text: str) -> int:
            if "first line" in text:
                heard.set()
            return super().write(text)

    with ControlServer(short_home, handler):
        out, err = Out(), io.StringIO()
        code = control.forward(short_home, Request(["ask", "q?"], "/docs", isatty=True), out, err)
        assert (code, out.getvalue(), err.getvalue()) == (
            3,
            "first line\ntty ['ask', 'q?'] /docs\n",
            "a warning\n",
        )
        # heard stays set: this caller's output is not watched
        assert ask(short_home, "status")[:2] == (3, "first line\npipe ['status'] /\n")


def test_other_threads_keep_writing_to_the_real_streams(short_home: Path, capsys):
    inside = threading.Event()
    go_on = threading.Event()

    def handler(request: Request) -> int:
        inside.set()
        go_on.wait(10)
        print("to the client")
        return 0

    with ControlServer(short_home, handler):
        result: list[tuple[int | None, str, str]] = []
        caller = threading.Thread(target=lambda: result.append(ask(short_home, "folders")))
        caller.start()
        assert inside.wait(10)
        print("to the terminal")  # this thread is not the command's
        go_on.set()
        caller.join(10)
    assert result == [(0, "to the client\n", "")]
    assert "to the terminal" in capsys.readouterr().out


def test_a_failing_handler_ends_as_an_uncaught_error_would(short_home: Path):
    def handler(request: Request) -> int:
        raise RuntimeError("boom")

    with ControlServer(short_home, handler):
        code, out, err = ask(short_home, "status")
    assert code == 1 and out == "" and "Traceback" in err and "RuntimeError: boom" in err


def test_a_peer_of_another_uid_is_dropped(short_home: Path):
    called = []
    with (
        ControlServer(short_home, lambda r: called.append(r) or 0, uid=os.getuid() + 1),
        pytest.raises(ControlError, match="stopped before the command finished"),
    ):
        ask(short_home, "status")
    assert called == []


def test_the_client_refuses_a_socket_others_may_open_or_that_is_not_its_users(
    short_home: Path, monkeypatch: pytest.MonkeyPatch
):
    called = []
    with ControlServer(short_home, lambda r: called.append(r) or 0) as server:
        os.chmod(server.path, 0o660)
        with pytest.raises(ControlError, match="others may open it"):
            ask(short_home, "status")
        os.chmod(server.path, 0o600)
        assert ask(short_home, "status")[0] == 0
        monkeypatch.setattr(control, "_uid", lambda: os.getuid() + 1)
        with pytest.raises(ControlError, match="belongs to uid"):
            ask(short_home, "status")
    assert len(called) == 1


def test_a_stale_socket_is_replaced_and_a_live_one_is_not(short_home: Path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(short_home / "control.sock"))
    stale.close()  # a crashed owner leaves its socket file with nobody listening
    os.chmod(short_home / "control.sock", 0o600)
    assert (short_home / "control.sock").exists()
    assert ask(short_home, "status") == (None, "", "")
    with ControlServer(short_home, lambda r: 7):
        assert ask(short_home, "status")[0] == 7
        with pytest.raises(ControlError, match="already serves"):
            ControlServer(short_home, lambda r: 0).start()
        assert ask(short_home, "status")[0] == 7  # the first server still has its socket


def test_something_else_in_the_sockets_place_is_left_alone(short_home: Path):
    (short_home / "control.sock").write_text("not a socket")
    with pytest.raises(ControlError, match="not one"):
        ControlServer(short_home, lambda r: 0).start()
    assert (short_home / "control.sock").read_text() == "not a socket"


def test_a_path_too_long_for_af_unix_falls_back_to_a_private_hashed_name(
    short_home: Path, monkeypatch: pytest.MonkeyPatch
):
    runtime = short_home / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    deep = short_home / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    other = short_home / ("d" * 60) / ("f" * 60)
    other.mkdir()
    assert len(os.fsencode(deep / "control.sock")) >= control.MAX_PATH_BYTES
    path = control.socket_path(deep)
    assert path.parent == runtime and str(os.getuid()) in path.name
    assert control.socket_path(other) != path  # one per data folder
    with ControlServer(deep, lambda r: 5) as server:
        assert server.path == path and stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert ask(deep, "status")[0] == 5
        assert ask(other, "status")[0] is None
    assert not path.exists()


# --- cli.serve: a handed-over command runs as the command line runs it ---------------------------------------
class Owner:
    """Stands in for the owner's engine: the few methods the commands below call."""

    def __init__(self) -> None:
        self.removed: list[str] = []

    def folders(self) -> list[str]:
        return ["/docs/a", "/docs/b"]

    def remove_folder(self, folder: str) -> str:
        self.removed.append(folder)
        return folder


def serve(*argv: str, cwd: str = "/work") -> tuple[int, str, str]:
    owner = Owner()
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = cli.serve(owner, list(argv), cwd)  # type: ignore[arg-type]
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


def test_serve_runs_the_command_with_the_callers_paths():
    assert serve("folders") == (0, "/docs/a\n/docs/b\n", "")
    assert serve("remove", "cases/2024", cwd="/home/me") == (0, "stopped watching /home/me/cases/2024\n", "")


def test_serve_refuses_what_needs_the_data_folder_alone_and_reports_usage_errors():
    for argv in (
        ["index"],
        ["watch"],
        ["repair"],
        ["models", "add", "x.gguf"],
        ["destinations", "add", "n", "--smb", "//s/x"],
    ):
        code, out, err = serve(*argv)
        assert code == 1 and out == "" and err.count("\n") == 1, argv
        assert "needs the data directory to itself" in err and "File › Quit" in err
    code, out, err = serve("frobnicate")
    assert code == 2 and "invalid choice" in err
    code, out, err = serve("--version")
    assert code == 0 and out.startswith("sealroom ")


def test_which_commands_are_handed_over():
    parser = cli._parser()
    handed = {
        " ".join(argv)
        for argv in (
            ["status"], ["search", "q"], ["ask", "q"], ["export", "--chat", "1", "--to", "d"], ["audit"],
            ["folders"], ["add", "/x"], ["remove", "/x"], ["feedback", "--list"], ["report"], ["outbox"],
            ["models"], ["destinations"], ["destinations", "test", "d"], ["index"], ["watch"], ["repair"],
            ["eval", "x.jsonl"], ["models", "add", "m.gguf"], ["destinations", "add", "d", "--folder", "/x"],
        )
        if cli.forwardable(parser.parse_args(argv))
    }  # fmt: skip
    assert handed == {
        "status", "search q", "ask q", "export --chat 1 --to d", "audit", "folders", "add /x", "remove /x",
        "feedback --list", "report", "outbox", "models", "destinations", "destinations test d",
    }  # fmt: skip
    assert cli.command_of(["ask", "-x", "--json"]) == "ask" and cli.command_of(["--version"]) is None


def test_a_closed_pipe_on_the_callers_side_is_the_callers_error(short_home: Path):
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError  # `sealroom audit | head` once head has what it wanted

    with ControlServer(short_home, lambda r: print("x" * 100) or 0), pytest.raises(BrokenPipeError):
        control.forward(short_home, Request(["audit"], "/"), Closed(), io.StringIO())
