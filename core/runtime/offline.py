"""Offline by construction: no library may phone home, and no socket leaves the machine.

`enforce()` runs before chromadb or llama_cpp are imported. It sets the libraries'
offline switches and installs an audit hook that refuses any socket connection to a
non-loopback address (unless the user or IT allowed that host explicitly) and records
the attempt in the log.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
import types
from collections.abc import Iterable

log = logging.getLogger("sealroom.offline")

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "CHROMA_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
    # Chroma reads its OpenTelemetry settings from the environment; its HTTP client would send spans
    # to an endpoint set there (the local client starts no tracing today). "none" is final.
    "CHROMA_OTEL_GRANULARITY": "none",
}

#: Chroma imports this OTLP span exporter (and with it gRPC and protobuf) at start-up even with
#: tracing off. Sealroom never sends spans anywhere, so the module is replaced by one whose exporter
#: refuses to be made: 12-16 MB less resident in the app, and no way to turn tracing on by accident.
SPAN_EXPORTER = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"

_allowed_hosts: set[str] = set()
_installed = False
blocked_attempts: list[str] = []


class NetworkBlocked(PermissionError):
    """Raised inside any code that tries to open a connection off this machine."""


class _RefusedSpanExporter:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NetworkBlocked("Sealroom sends no telemetry: Chroma's span exporter is disabled")


def _block_span_exporter() -> None:
    if SPAN_EXPORTER in sys.modules:  # imported before enforce(): leave it, granularity "none" holds
        return
    module = types.ModuleType(SPAN_EXPORTER, "Sealroom's stand-in: no span leaves the machine.")
    module.OTLPSpanExporter = _RefusedSpanExporter  # type: ignore[attr-defined]
    sys.modules[SPAN_EXPORTER] = module


def is_local(address: object) -> bool:
    """True for loopback and Unix-socket addresses."""
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return True
    host = address[0]
    if not isinstance(host, str):
        return True
    if host in _allowed_hosts or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


SOCKET_EVENTS = ("socket.connect", "socket.sendto", "socket.sendmsg")


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.getaddrinfo":  # a name is resolved before any connect: DNS itself leaves
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode("idna", "replace")
        if not host or is_local((host,)):
            return
        address: object = (host, args[1])
    elif event in SOCKET_EVENTS:
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6) or address is None:
            return
        if is_local(address):
            return
    else:
        return
    blocked_attempts.append(repr(address))
    log.warning("blocked network connection", extra={"fields": {"address": repr(address), "event": event}})
    raise NetworkBlocked(f"Sealroom works offline: {event.split('.')[1]} to {address!r} refused")


def allow_hosts(hosts: Iterable[str]) -> None:
    """Let connections to these addresses pass (the resolved addresses of a host IT allowed)."""
    _allowed_hosts.update(hosts)


def admit(host: str, port: int, allowed: Iterable[str]) -> bool:
    """Whether a connection to `host` may go out: loopback, or a host the IT policy lists (`allowed`),
    whose resolved addresses then pass the socket guard. False: not listed; OSError: the name does not
    resolve. The team service and the model server are reached only through this."""
    if is_local((host, port)):
        return True
    if host.casefold() not in {h.casefold() for h in allowed}:
        return False
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    allow_hosts([str(info[4][0]) for info in infos])
    return True


def enforce(allowed_hosts: Iterable[str] = ()) -> None:
    """Set offline switches and install the socket guard (once per process)."""
    global _installed
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    _allowed_hosts.update(allowed_hosts)
    _block_span_exporter()
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True
