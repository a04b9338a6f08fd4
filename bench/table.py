"""A benchmark section's result: a titled table that prints as text and serialises to JSON."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the whole section could not run (e.g. ../shared absent)

    def add(self, *values: object) -> None:
        self.rows.append(list(values))

    def render(self) -> str:
        lines = [f"\n## {self.title}"]
        if self.skipped:
            return "\n".join(lines + [f"(skipped: {self.skipped})"])
        cells = [[_fmt(v) for v in row] for row in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(self.columns)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "notes": self.notes, "skipped": self.skipped}


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
