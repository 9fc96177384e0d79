"""A report as data (:class:`Section` s) and its renderings: Markdown, HTML, LaTeX.

``reports.build`` assembles the sections once; each renderer here turns the same sections into one format,
so a new section is one more :class:`Section`, not an edit per format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports import html, tables


@dataclass
class Section:
    """One part of a report.

    title: its heading ("" for the lead); table: ``style -> display frame`` for ``"md"``, ``"latex"`` and
    ``"html"`` (cells already formatted); notes: small print under the table (the protocol lines);
    text: paragraphs after it; items: a bulleted list; figures: ``(png path, caption)``;
    in_tex: whether the table goes into ``table.tex`` (the tables a paper takes).
    """

    title: str = ""
    table: Callable[[str], pd.DataFrame] | None = None
    notes: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)
    in_tex: bool = False


def _md_table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True)


def markdown(title: str, sections: list[Section], footer: list[str]) -> str:
    """``report.md``: blocks separated by blank lines; notes keep their line breaks (two trailing spaces)."""
    blocks = [f"# {title}"]
    for s in sections:
        blocks += [f"## {s.title}"] if s.title else []
        blocks += [_md_table(s.table("md"))] if s.table else []
        blocks += ["\n".join(f"{n}  " for n in s.notes)] if s.notes else []
        blocks += s.text
        blocks += ["\n".join(f"- {i}" for i in s.items)] if s.items else []
        blocks += ["\n".join(f"![{c}]({_figure_path(p)})" for p, c in s.figures)] if s.figures else []
    blocks += ["---", "\n".join(f"{line}  " for line in footer)]
    return "\n\n".join(blocks) + "\n"


def _figure_path(p: Path) -> str:
    """A figure's path relative to the report: ``figures/x.png``, or ``figures/<dataset>/x.png``."""
    return f"figures/{p.name}" if p.parent.name == "figures" else f"figures/{p.parent.name}/{p.name}"


def markdown_table(section: Section, titled: bool = False) -> str:
    """``table.md``: one section's table with its notes (under its title when ``titled``)."""
    return (
        (f"## {section.title}\n\n" if titled else "")
        + _md_table(section.table("md"))
        + "\n\n"
        + "\n".join(f"{n}  " for n in section.notes)
        + "\n"
    )


def html_page(title: str, sections: list[Section], footer: list[str]) -> str:
    """``report.html``: one self-contained page (figures embedded)."""
    bodies = []
    for s in sections:
        body = html.table(s.table("html")) if s.table else ""
        body += html.notes(s.notes) + html.notes(s.text)
        body += html.escaped_list(s.items) if s.items else ""
        body += "".join(html.figure(p, c) for p, c in s.figures)
        bodies.append((s.title, body))
    return html.page(title, bodies, footer)


def latex(sections: list[Section]) -> tuple[str, str]:
    """``(table.tex, table-body.tex)`` of the sections marked ``in_tex``: a standalone document with each
    tabular followed by its notes, and the bare tabulars (notes as comments) to ``\\input`` in a paper."""
    parts = [(tables.latex_tabular(s.table("latex")), s.notes) for s in sections if s.in_tex and s.table]
    body = "\n".join("".join(f"% {n}\n" for n in notes) + tabular for tabular, notes in parts)
    return tables.latex_document(parts), body
