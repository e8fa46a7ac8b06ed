"""Markdown tables for reports, benchmarks and model cards."""

from __future__ import annotations


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A markdown table of ``rows`` with ``columns`` = [(key, header)]; floats get 2 decimals (or 3 if small)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return (
                f"{value:.3g}"
                if 0 < abs(value) < 0.1
                else f"{value:,.2f}"
                if abs(value) < 1000
                else f"{value:,.0f}"
            )
        if isinstance(value, int):
            return f"{value:,}"
        return "" if value is None else str(value)

    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])
