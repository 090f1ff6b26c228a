"""Secrets (SMB passwords, the audit HMAC key) live only in the OS keyring, never in a file of ours.

Windows Credential Manager, macOS Keychain, or the Secret Service on Linux (GNOME Keyring,
KWallet), through `keyring`. Where no keyring works, storing says so in one line with the fix;
there is no plaintext fallback.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sealroom.core.runtime.errors import SealroomError

SERVICE = "Sealroom"
NO_KEYRING = (
    "no keyring is available to keep the password (Sealroom never stores passwords in files): "
    "on Linux start a Secret Service such as GNOME Keyring (apt-get install gnome-keyring; it runs in a "
    "desktop session, or headless in `dbus-run-session`); Windows and macOS have one built in"
)

log = logging.getLogger("sealroom.secrets")


def _backend() -> Any:
    """The keyring backend, looked up again while none works (a session bus may have appeared)."""
    import keyring
    import keyring.core
    from keyring.backends import chainer, fail

    def usable(backend: Any) -> bool:
        return not isinstance(backend, fail.Keyring) and not (
            isinstance(backend, chainer.ChainerBackend) and not backend.backends
        )

    backend = keyring.get_keyring()
    if not usable(backend):
        import keyring.backend

        reset = getattr(keyring.backend.get_all_keyring, "reset", None)
        if reset:  # keyring probes backends once per process; a bus may have come up since
            with contextlib.suppress(KeyError):  # not probed yet
                reset()
        keyring.core.init_backend()
        backend = keyring.get_keyring()
    return backend if usable(backend) else None


def available() -> bool:
    try:
        return _backend() is not None
    except Exception:
        return False


def get(account: str, scope: str = "") -> str | None:
    """The secret, or None when absent or no keyring works (reading never fails loudly)."""
    try:
        backend = _backend()
        return None if backend is None else backend.get_password(SERVICE, _name(account, scope))
    except Exception as exc:
        log.info("keyring read failed", extra={"fields": {"error": type(exc).__name__}})
        return None


def set(account: str, scope: str, secret: str) -> bool:
    """Store quietly; False when no keyring works (callers that must store use `store`)."""
    try:
        store(account, scope, secret)
        return True
    except SealroomError:
        return False


def store(account: str, scope: str, secret: str) -> None:
    """Store a secret in the keyring, or fail in one line saying how to get a keyring."""
    try:
        backend = _backend()
        if backend is None:
            raise SealroomError(NO_KEYRING)
        backend.set_password(SERVICE, _name(account, scope), secret)
    except SealroomError:
        raise
    except Exception as exc:
        raise SealroomError(f"{NO_KEYRING} ({type(exc).__name__})") from None


def delete(account: str, scope: str = "") -> None:
    try:
        backend = _backend()
        if backend is not None:
            backend.delete_password(SERVICE, _name(account, scope))
    except Exception as exc:
        log.info("keyring delete failed", extra={"fields": {"error": type(exc).__name__}})


def _name(account: str, scope: str) -> str:
    return f"{account}@{scope}" if scope else account
