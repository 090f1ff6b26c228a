"""Settings: the user's TOML file under the IT policy, whose values win.

The user file is `settings.toml` in SEALROOM_HOME when that is set (tests), else in the
platform's user config directory. One rule says where policy comes from (packaging/README.md):

- the system policy file, /etc/sealroom/policy.toml, always applies when it is present;
- SEALROOM_POLICY names a further policy file, which applies on top of it and, like the user's
  settings, may only make a key the system file sets stricter (`stricter`), never loosen or remove it;
  with no system file it is the policy;
- keys any policy file sets are reported as locked.

Compliance keys are checked again where they are enforced (`under_policy`), so settings handed to
the engine by the window or a script cannot loosen them either.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sealroom.core.runtime.errors import SealroomError

SETTINGS_SCHEMA_VERSION = 1


@dataclass
class Settings:
    chunk_tokens: int = 200
    # by measurement (bench/retrieval.py): 40 → 16 kept hit@5, MRR 0.90 → 0.91, 7% fewer tokens
    chunk_overlap: int = 16
    parser_processes: int = 2
    parse_timeout_s: float = 60.0
    parse_memory_mb: int = 480  # per parser process; with the engine, the whole tree stays under 1.5 GB
    ocr: bool = True  # scanned PDF pages and image files are read by OCR (Tesseract)
    max_file_mb: int = 200
    max_chunks_per_file: int = 3000  # a bigger file is indexed up to this many passages, and says so
    debounce_s: float = 0.25
    reconcile_interval_s: float = 300.0
    chat_model: str = ""  # path of a GGUF file; empty means the default model
    # the default model runs as its compact copy (models/compact.py: ~60 MB less resident, same answers
    # on the eval set); false runs the shipped file itself
    compact_default_model: bool = True
    n_ctx: int = 2048  # the longest English question (2,000 characters) with its quotes: ~900 tokens
    n_threads: int = 0  # 0: all cores
    max_answer_tokens: int = 128
    search_k: int = 6
    min_similarity: float = 0.45  # for passages that share no word with the question
    min_evidence: float = 0.3  # below this no sentence answers the question: abstain (see `sealroom eval`)
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_model_sha256: list[str] = field(default_factory=list)  # empty: any model
    # Export and audit (issue 9); IT usually sets these in the policy file
    export_enabled: bool = True
    export_destinations: list[str] = field(default_factory=list)  # name or path/host patterns; empty: any
    export_formats: list[str] = field(default_factory=lambda: ["md", "docx", "json"])
    export_include_passages: bool = True  # false: exports carry file and page references only
    audit_enabled: bool = True
    audit_question_text: bool = False  # false: the trail holds a hash of each question, not its text
    audit_retention_days: int = 0  # 0: keep every record
    # The feedback loop (issue 27): local metrics and traces, the drift check, alerts, IT's metrics
    monitoring: bool = True  # local metrics (metrics.sqlite) and traces of each ask (traces.jsonl)
    drift_check: bool = True  # run the rated answers again after anything that can change answers
    alert_export_hours: float = 24.0  # an export waiting longer is an alert
    alert_disk_gb: float = 2.0  # less free space on the data folder's disk is an alert
    metrics_destination: str = ""  # IT: an export destination that receives the metrics file (no content)
    metrics_interval_hours: float = 24.0
    metrics_textfile_dir: str = ""  # IT: write sealroom.prom here (node_exporter's textfile collector)
    # Team mode (issue 29; docs/team-mode.md): the Sealroom service searched beside this computer's folders,
    # "https://host:port" (its host must be in allowed_hosts); empty: off, and nothing leaves the laptop
    team_server: str = ""
    team_ca: str = ""  # the CA certificate (PEM file) that signed the service's; empty: the system's
    force_polling: bool = False
    log_level: str = "INFO"
    locked: frozenset[str] = frozenset()


def user_settings_path() -> Path:
    home = os.environ.get("SEALROOM_HOME")
    if home:
        return Path(home) / "settings.toml"
    import platformdirs

    return Path(platformdirs.user_config_dir("Sealroom", appauthor=False)) / "settings.toml"


SYSTEM_POLICY = Path("/etc/sealroom/policy.toml")

#: Compliance switches and the value that is the stricter one.
STRICT_BOOL = {
    "export_enabled": False,
    "audit_enabled": True,
    "audit_question_text": False,
    "export_include_passages": False,
}
#: Lists of what is allowed where an empty list allows nothing: stricter is a subset.
ALLOW_LISTS = {"export_formats", "allowed_hosts"}
#: Lists where an empty list allows anything: stricter is a non-empty subset.
ANY_IF_EMPTY = {"export_destinations", "allowed_model_sha256"}


def policy_paths() -> list[Path]:
    """The policy files that apply, strongest first: the system file, then SEALROOM_POLICY's."""
    paths = [SYSTEM_POLICY]
    extra = os.environ.get("SEALROOM_POLICY")
    if extra and Path(extra) != SYSTEM_POLICY:
        paths.append(Path(extra))
    return paths


def policy_digest() -> tuple[dict[str, str], str]:
    """The sha256 of each policy file present, and one digest of them all ('' when none is)."""
    import hashlib

    files = {}
    for path in policy_paths():
        try:
            files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue  # absent: the record lists the files that applied
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest() if files else ""
    return files, digest


def changes(old: Settings, new: Settings) -> dict[str, Any]:
    """The settings `new` sets otherwise than `old` (what the audit trail records of a change)."""
    return {
        f.name: getattr(new, f.name)
        for f in fields(new)
        if f.name != "locked" and getattr(new, f.name) != getattr(old, f.name)
    }


def policy_path() -> Path:
    """The policy file shown to users: the system one when present, else SEALROOM_POLICY's."""
    return next((p for p in policy_paths() if p.is_file()), policy_paths()[-1])


def stricter(key: str, policy: Any, other: Any) -> Any:
    """What holds for `key` when a policy says `policy` and something weaker (a further policy file, the
    user's settings, settings handed to the engine) says `other`: `other` where it is at least as strict,
    else the policy's value."""
    if key in STRICT_BOOL:
        return STRICT_BOOL[key] if STRICT_BOOL[key] in (policy, other) else policy
    if key in ALLOW_LISTS and isinstance(other, list):
        return [v for v in other if v in policy]
    if key in ANY_IF_EMPTY and isinstance(other, list) and other:
        return other if not policy or all(v in policy for v in other) else policy
    return policy


def load_policy() -> dict[str, Any]:
    """The keys the IT policy sets, from every policy file that applies (see the module's rule)."""
    merged: dict[str, Any] = {}
    for path in policy_paths():
        for key, value in _read(path).items():
            merged[key] = stricter(key, merged[key], value) if key in merged else value
    return merged


def under_policy(settings: Settings) -> Settings:
    """`settings` with every key the policy sets held to it (a stricter value stands)."""
    policy = load_policy()
    held = {k: stricter(k, v, getattr(settings, k)) for k, v in policy.items()}
    return replace(settings, **held, locked=frozenset(policy) | settings.locked)


def _read(path: Path) -> dict[str, Any]:
    """A settings or policy file's keys; a key Sealroom does not know is an error naming the file."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SealroomError(f"cannot read settings file {path}: {exc}") from None
    data.pop("schema_version", None)
    known = _known_keys()
    for key in data:
        if key not in known:
            raise SealroomError(f"unknown setting '{key}' in {path}")
    return data


def _known_keys() -> set[str]:
    return {f.name for f in fields(Settings) if f.name != "locked"}


def load_settings() -> Settings:
    user, policy = _read(user_settings_path()), load_policy()
    values = {**user, **{k: stricter(k, v, user[k]) if k in user else v for k, v in policy.items()}}
    return Settings(**values, locked=frozenset(policy))


def save_user_settings(changes: dict[str, Any]) -> Settings:
    """Write `changes` into the user's settings file; keys the IT policy sets cannot be changed."""
    known, current, defaults = _known_keys(), load_settings(), Settings()
    for key, value in changes.items():
        if key not in known:
            raise SealroomError(f"unknown setting '{key}'")
        if key in current.locked:
            raise SealroomError(
                f"'{key}' is set by your IT policy ({policy_path()}) and cannot be changed here"
            )
        kind = type(getattr(defaults, key))
        if not isinstance(value, kind) and not (isinstance(value, int) and kind is float):
            raise SealroomError(f"setting '{key}' needs a {kind.__name__}")
    path = user_settings_path()
    data = {**_read(path), **changes}
    lines = [f"schema_version = {SETTINGS_SCHEMA_VERSION}"] + [
        f"{k} = {_toml(v)}" for k, v in sorted(data.items())
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # never a half-written settings file
    return load_settings()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise SealroomError(f"cannot store {value!r} in the settings file")
