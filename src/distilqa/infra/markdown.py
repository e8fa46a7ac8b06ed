"""Markdown tables for reports, benchmarks and model cards: one layout, two ways to format a number."""

from __future__ import annotations

from typing import Any


def render_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table of already formatted cells (``|`` in a cell is escaped, newlines become spaces)."""

    def clean(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report_cell(value: Any) -> str:
    """Benchmark style: floats with 2 decimals (3 significant digits when below 0.1), thousands separated."""
    if isinstance(value, float):
        if 0 < abs(value) < 0.1:
            return f"{value:.3g}"
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A markdown table of ``rows`` with ``columns`` = [(key, header)], cells as :func:`report_cell` writes them."""
    return render_table([h for _, h in columns], [[report_cell(r.get(k)) for k, _ in columns] for r in rows])
