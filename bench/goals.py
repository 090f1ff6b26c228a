"""Issue 11's goals as one table: each bench script writes its rows to bench/results/<name>.json
("rows": figure, sealroom, baseline, ratio, goal, met); `python bench/goals.py` gathers them, prints
the table, writes bench/results/goals.json and goals.png, and puts the table in the README.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SOURCES = [
    "baselines.json",
    "answer_latency.json",
    "memory.json",
    "large_folder.json",
    "scale-10k.json",
    "scale-100k.json",
    "monitoring.json",
]  # in table order
README = ROOT / "README.md"
BEGIN, END = "<!-- goals table: bench/goals.py -->", "<!-- end goals table -->"


@dataclass
class Row:
    figure: str
    sealroom: float
    baseline: float
    unit: str
    goal: float  # the ratio sealroom / baseline must be at least (higher) or at most (lower) this
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        return self.sealroom / self.baseline if self.baseline else float("inf")

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "sealroom": round(self.sealroom, 3),
            "baseline": round(self.baseline, 3),
            "ratio": round(self.ratio, 3),
            "goal_text": f"{'≥' if self.higher_is_better else '≤'} {self.goal:g}×",
            "met": self.met,
        }


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    info = Path("/proc/cpuinfo")
    if info.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in info.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"


def format_table(rows: list[dict[str, object]]) -> str:
    out = [f"{'figure':<58} {'Sealroom':>10} {'baseline':>10} {'ratio':>7} {'goal':>7}  met?"]
    for r in rows:
        out.append(
            f"{r['figure']!s:<58} {float(r['sealroom']):>10.3g} {float(r['baseline']):>10.3g} "  # type: ignore[arg-type]
            f"{float(r['ratio']):>6.2f}× {r['goal_text']!s:>7}  {'yes' if r['met'] else 'NO'}"  # type: ignore[arg-type]
        )
    return "\n".join(out)


def markdown(rows: list[dict[str, object]], where: str, when: str) -> str:
    lines = [
        f"Measured by `make bench` on {where}, {when}.",
        "",
        "| figure | Sealroom | baseline | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] else ""
        lines.append(
            f"| {r['figure']} | {float(r['sealroom']):.3g}{unit} | {float(r['baseline']):.3g}{unit} | "  # type: ignore[arg-type]
            f"{float(r['ratio']):.2f}× | {r['goal_text']} | {'yes' if r['met'] else '**no**'} |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def chart(rows: list[dict[str, object]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [str(r["figure"]) for r in rows]
    ratios = [float(r["ratio"]) for r in rows]  # type: ignore[arg-type]
    goals = [float(r["goal"]) for r in rows]  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.5))
    colours = ["#2e7d32" if r["met"] else "#c62828" for r in rows]
    ax.barh(range(len(rows)), ratios, color=colours)
    ax.scatter(goals, range(len(rows)), marker="|", s=400, color="black", label="goal", zorder=3)
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Sealroom / baseline (green: goal met)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(name: str, rows: list[Row], **extra: object) -> None:
    """One bench script's rows (and whatever detail it measured) as bench/results/<name>."""
    data = {"machine": machine(), "measured": time.strftime("%Y-%m-%d"), **extra}
    data["rows"] = [r.as_dict() for r in rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(format_table(data["rows"]))  # type: ignore[arg-type]


def main() -> int:
    rows: list[dict[str, object]] = []
    sources = []
    measured_on: dict[str, list[str]] = {}  # machine -> result files measured there
    for name in SOURCES:
        path = RESULTS / name
        if path.is_file():
            data = json.loads(path.read_text())
            rows += data.get("rows", [])
            sources.append(name)
            measured_on.setdefault(str(data.get("machine", "an unrecorded machine")), []).append(name)
    if not rows:
        print("no bench results yet: run make bench")
        return 1
    when = time.strftime("%B %Y")
    where = max(measured_on, key=lambda m: len(measured_on[m]))
    others = [f"{', '.join(names)} on {m}" for m, names in measured_on.items() if m != where]
    if others:  # a result not re-measured on this machine says where it comes from
        where += f" ({'; '.join(others)})"
    print(format_table(rows))
    (RESULTS / "goals.json").write_text(
        json.dumps({"machine": where, "sources": sources, "rows": rows}, indent=1, ensure_ascii=False) + "\n"
    )
    chart(rows, RESULTS / "goals.png", f"Sealroom vs baselines ({where})")
    if README.is_file():
        text = README.read_text()
        block = f"{BEGIN}\n{markdown(rows, where, when)}\n{END}"
        if BEGIN in text:
            text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
            README.write_text(text)
    print(f"wrote {RESULTS / 'goals.json'} and {RESULTS / 'goals.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
