"""Read a GGUF file's header and metadata without loading it, and check it is whole.

A truncated or foreign file is caught here with a clear message, before llama.cpp
gets to abort the worker process on it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sealroom.core.runtime.errors import ModelError

MAGIC = b"GGUF"
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
# ggml type -> (elements per block, bytes per block)
_TYPE_SIZES = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
}
_KEEP_ARRAYS_UP_TO = 64  # token lists have 10^5 entries; we only need their length


@dataclass
class GgufInfo:
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensor_count: int = 0
    tensor_types: dict[str, int] = field(default_factory=dict)  # tensor name -> ggml type code

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if value is not None else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return str(value) if value else None


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.handle = handle
        self.path = path

    def take(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise ModelError(f"{self.path.name} is truncated (its header ends early); copy the file again")
        return data

    def scalar(self, code: int) -> Any:
        fmt = _SCALARS[code]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def skip_array(self, code: int, count: int) -> None:
        if code in _SCALARS:
            self.handle.seek(struct.calcsize(_SCALARS[code]) * count, 1)
        elif code == 8:
            length = struct.Struct("<Q")
            read, seek = self.handle.read, self.handle.seek
            try:
                for _ in range(count):
                    seek(length.unpack(read(8))[0], 1)
            except struct.error:
                raise ModelError(
                    f"{self.path.name} is truncated (its header ends early); copy the file again"
                ) from None
        else:
            for _ in range(count):
                self.value(code)

    def string(self) -> str:
        length = self.scalar(10)
        if length > 1 << 28:
            raise ModelError(f"{self.path.name} has a corrupt GGUF header")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, code: int) -> Any:
        if code == 8:
            return self.string()
        if code == 9:
            item_code, count = self.scalar(4), self.scalar(10)
            if count <= _KEEP_ARRAYS_UP_TO:
                return [self.value(item_code) for _ in range(count)]
            self.skip_array(item_code, count)  # vocabularies: 100k+ items nobody here reads
            return _Length(count)
        if code not in _SCALARS:
            raise ModelError(f"{self.path.name} has a corrupt GGUF header (unknown value type {code})")
        return self.scalar(code)


@dataclass(frozen=True)
class _Length:
    """Stands for a long array we skipped over."""

    count: int


def read_gguf(path: Path) -> GgufInfo:
    """Header, metadata and a size check; raises ModelError with a message for the user."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(4) != MAGIC:
            raise ModelError(f"{path.name} is not a GGUF model file")
        reader = _Reader(handle, path)
        version = reader.scalar(4)
        if version not in (2, 3):
            raise ModelError(f"{path.name} uses GGUF version {version}, which this app cannot read")
        tensor_count, kv_count = reader.scalar(10), reader.scalar(10)
        info = GgufInfo(version, tensor_count=tensor_count)
        for _ in range(kv_count):
            key = reader.string()
            info.metadata[key] = reader.value(reader.scalar(4))
        end = 0
        for _ in range(tensor_count):
            name = reader.string()
            dims = [reader.scalar(10) for _ in range(reader.scalar(4))]
            ggml_type, offset = reader.scalar(4), reader.scalar(10)
            info.tensor_types[name] = ggml_type
            elements = 1
            for d in dims:
                elements *= d
            block, block_bytes = _TYPE_SIZES.get(ggml_type, (1, 0))
            end = max(end, offset + elements // block * block_bytes)
        alignment = int(info.metadata.get("general.alignment", 32))
        data_start = -(-handle.tell() // alignment) * alignment
    if data_start + end > size:
        raise ModelError(
            f"{path.name} is truncated: {size:,} bytes on disk, {data_start + end:,} expected; copy the file again"
        )
    return info
