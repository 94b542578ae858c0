"""HTML building blocks shared by the report, compare and trend pages: the style sheet, escaping,
tables, figure references and their markup, number formatting for table cells.

(Not called html.py: inside the package that name would shadow the standard library's `html`.)
Nothing here imports matplotlib, so the pages' callers load it only when they draw.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FIGURE_DIR = "figures"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem 2rem; color: #1b1b1b;
       max-width: 1500px; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
       border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; } h3 { font-size: 1.05rem; }
.sub { color: #555; margin-top: 0; }
.warning { background: #fde8e6; border: 2px solid #c62828; color: #7f1212; padding: 0.6rem 1rem;
           margin: 1rem 0; border-radius: 4px; }
.warning ul { margin: 0.3rem 0 0 0; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.8rem; }
td code { word-break: break-all; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.6rem; overflow-x: auto; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 0; border: 1px solid #e0e0e0; padding: 0.4rem; background: #fff; flex: 0 1 auto; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.8rem; color: #444; margin-top: 0.3rem; }
.pass { background: #e6f4ea; border: 2px solid #1a7f37; padding: 0.6rem 1rem; margin: 1rem 0; border-radius: 4px; }
.inconclusive { background: #fff8e1; border: 2px solid #b26a00; padding: 0.6rem 1rem; margin: 1rem 0;
                border-radius: 4px; }
.bad { color: #b71c1c; font-weight: bold; } .odd { background: #fff3c4; } .muted { color: #888; }
footer { margin-top: 2rem; font-size: 0.8rem; color: #666; }
"""


@dataclass(frozen=True)
class FigureRef:
    """A figure written to disk; paths relative to the report folder."""

    png: str
    svg: str
    alt: str
    width: int  # PNG size in pixels, so the page lays figures out at their natural size
    height: int


def esc(value: object) -> str:
    """Text for HTML content or attribute values."""
    return html.escape(str(value), quote=True)


FMT_MAX_PLAIN = 1e12  # fmt writes larger magnitudes as 1.234e+15


def fmt(value: float, digits: int = 4) -> str:
    """A number for a table: `digits` significant digits (all integer digits of large values up
    to FMT_MAX_PLAIN, beyond that %g form, never hundreds of digits), an en dash for NaN."""
    if value is None or not np.isfinite(value):
        return "\u2013"
    if 10 ** digits <= abs(value) < FMT_MAX_PLAIN:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def slug(text: str) -> str:
    """A file-name-safe form of a group name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "run"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table from already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def figure_html(ref: FigureRef) -> str:
    """A figure: the PNG, linking to the SVG, with its caption."""
    return (
        f'<figure><a href="{esc(ref.svg)}"><img src="{esc(ref.png)}" alt="{esc(ref.alt)}" '
        f'width="{ref.width}" height="{ref.height}"></a>'
        f'<figcaption>{esc(ref.alt)} \u2013 <a href="{esc(ref.png)}">PNG</a> | '
        f'<a href="{esc(ref.svg)}">SVG</a></figcaption></figure>'
    )
