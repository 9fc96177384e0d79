"""A self-contained HTML page (figures embedded as base64 PNG, no external resources, no scripts)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 1400px;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { padding: 0.25rem 0.6rem; text-align: right; border-bottom: 1px solid #eee; white-space: nowrap; }
th { border-bottom: 2px solid #444; } td:first-child, th:first-child { text-align: left; }
.meta, .note, footer { color: #555; font-size: 0.85rem; } .scroll { overflow-x: auto; }
figure { display: inline-block; margin: 0.5rem; vertical-align: top; } figure img { max-width: 640px; }
figcaption { font-size: 0.8rem; color: #555; text-align: center; }
footer { margin-top: 3rem; border-top: 1px solid #ddd; padding-top: 0.5rem; }
"""


def table(frame: pd.DataFrame) -> str:
    """A DataFrame whose cells are trusted (numbers, names, <b>) as an HTML table."""
    return '<div class="scroll">' + frame.to_html(index=False, escape=False, border=0) + "</div>"


def escaped_list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def notes(lines: list[str]) -> str:
    """Plain-text lines as small print under a table."""
    return "".join(f'<p class="note">{html.escape(line)}</p>' for line in lines)


def figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = html.escape(caption)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'


def page(title: str, sections: list[tuple[str, str]], footer: list[str]) -> str:
    """``sections``: (heading, trusted HTML body); ``footer``: plain-text lines (escaped)."""
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{b}\n" if h else f"{b}\n" for h, b in sections)
    foot = "<br>".join(html.escape(line) for line in footer)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head>\n<body><h1>{html.escape(title)}</h1>\n{body}<footer>{foot}</footer></body></html>\n"
    )
