"""Self-contained HTML report: sections of blocks (text, HTML, figures, tables) rendered to one page.

Figures are embedded as base64 PNG data URIs and the stylesheet is inline, so the
page needs no network and no other file. Later workflow steps add their own
:class:`Section` objects; this module only knows how to lay them out.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import pandas as pd

from ..errors import InputError
from ._style import CSS
from .tables import dataframe_html

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (escaped on rendering)."""

    text: str
    css_class: str = ""


@dataclass(frozen=True)
class Html:
    """A trusted HTML fragment inserted as is (build it from escaped parts)."""

    html: str


@dataclass(frozen=True)
class Figure:
    """A PNG image with an optional caption.

    Parameters
    ----------
    png : bytes or matplotlib.figure.Figure
        PNG bytes, or a matplotlib figure that is rendered to PNG immediately.
    caption : str
        Shown under the image (plain text).
    alt : str
        Text alternative; for a matplotlib figure it defaults to its panels' titles and
        axis labels (e.g. ``"HAADF: x (nm) / y (nm); HAADF (counts)"``), so the calibration
        is readable without the image.
    dpi : int
        Resolution of the PNG rendered from a matplotlib figure.
    """

    png: bytes
    caption: str = ""
    alt: str = ""
    dpi: int = 96

    def __post_init__(self) -> None:
        png = self.png
        if hasattr(png, "savefig"):
            if not self.alt:
                object.__setattr__(self, "alt", describe_axes(png))
            buf = io.BytesIO()
            png.savefig(buf, format="png", dpi=self.dpi)
            png = buf.getvalue()
            object.__setattr__(self, "png", png)
        if not isinstance(png, (bytes, bytearray)) or not bytes(png).startswith(_PNG_MAGIC):
            raise InputError("Figure needs PNG bytes or a matplotlib figure")

    def data_uri(self) -> str:
        """The image as a ``data:image/png;base64,...`` URI."""
        return "data:image/png;base64," + base64.b64encode(bytes(self.png)).decode("ascii")


def describe_axes(fig) -> str:
    """Titles and axis labels of every panel of a matplotlib figure, as one line of text."""
    parts = []
    for ax in fig.axes:
        labels = " / ".join(t for t in (ax.get_xlabel(), ax.get_ylabel()) if t)
        title = ax.get_title()
        if labels or title:
            parts.append(f"{title}: {labels}" if title and labels else (title or labels))
    return "; ".join(parts)


@dataclass(frozen=True)
class Table:
    """A pandas DataFrame shown as an HTML table.

    Parameters
    ----------
    frame : pandas.DataFrame
    caption : str
    units : dict of str -> str, optional
        Column -> unit, shown in the header as ``"x (nm)"``.
    max_rows : int
        Longer tables show their first rows and say how many were left out.
    index : bool
        Whether to show the DataFrame's index.
    """

    frame: pd.DataFrame
    caption: str = ""
    units: dict[str, str] | None = None
    max_rows: int = 40
    index: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.frame, pd.DataFrame):
            raise InputError(f"Table needs a pandas DataFrame, got {type(self.frame).__name__}")


@dataclass(frozen=True)
class Row:
    """Blocks laid out side by side (e.g. the data next to its ground truth)."""

    blocks: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        for b in self.blocks:
            _check_block(b)


@dataclass
class Section:
    """A titled part of the report; ``blocks`` may contain nested sections.

    Parameters
    ----------
    title : str
    blocks : list of Text, Html, Figure, Table, Row or Section
    anchor : str, optional
        HTML id for links; derived from the title when omitted.
    """

    title: str
    blocks: list = field(default_factory=list)
    anchor: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise InputError("a report Section needs a non-empty title")
        self.blocks = list(self.blocks)
        for b in self.blocks:
            _check_block(b)

    def add(self, *blocks: "Block") -> "Section":
        """Append blocks and return the section (for chaining)."""
        for b in blocks:
            _check_block(b)
        self.blocks.extend(blocks)
        return self


Block = Union[Text, Html, Figure, Table, Row, Section]
_BLOCK_TYPES = (Text, Html, Figure, Table, Row, Section)


def _check_block(b) -> None:
    if not isinstance(b, _BLOCK_TYPES):
        names = ", ".join(t.__name__ for t in _BLOCK_TYPES)
        raise InputError(f"report blocks must be one of {names}; got {type(b).__name__}")


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "section"


def _render_block(b, depth: int, ids: dict[str, int]) -> str:
    if isinstance(b, Section):
        return _render_section(b, depth + 1, ids)[0]
    if isinstance(b, Text):
        cls = f' class="{html.escape(b.css_class)}"' if b.css_class else ""
        return f"<p{cls}>{html.escape(b.text)}</p>"
    if isinstance(b, Html):
        return b.html
    if isinstance(b, Figure):
        cap = f"<figcaption>{html.escape(b.caption)}</figcaption>" if b.caption else ""
        alt = html.escape(b.alt or b.caption or "figure", quote=True)
        return f'<figure><img src="{b.data_uri()}" alt="{alt}">{cap}</figure>'
    if isinstance(b, Table):
        cap = f'<p class="caption">{html.escape(b.caption)}</p>' if b.caption else ""
        return f"<div>{cap}{dataframe_html(b.frame, units=b.units, max_rows=b.max_rows, index=b.index)}</div>"
    if isinstance(b, Row):
        return '<div class="row">' + "".join(f"<div>{_render_block(x, depth, ids)}</div>" for x in b.blocks) + "</div>"
    _check_block(b)
    return ""  # unreachable: _check_block raised


def _unique_id(section: Section, ids: dict[str, int]) -> str:
    base = _slug(section.anchor or section.title)
    n = ids.get(base, 0)
    ids[base] = n + 1
    return base if n == 0 else f"{base}-{n + 1}"


def _render_section(section: Section, depth: int, ids: dict[str, int]) -> tuple[str, str]:
    level = min(2 + depth, 6)
    sid = _unique_id(section, ids)
    body = "\n".join(_render_block(b, depth, ids) for b in section.blocks)
    return f'<section id="{sid}">\n<h{level}>{html.escape(section.title)}</h{level}>\n{body}\n</section>', sid


def render_html(title: str, sections: list[Section], *, subtitle: str = "", footer: str = "") -> str:
    """The whole report as one self-contained HTML document.

    Parameters
    ----------
    title : str
        Page title and heading.
    sections : list of Section
        Top-level sections, listed in a table of contents.
    subtitle, footer : str
        Plain text shown under the title and at the bottom.
    """
    if not isinstance(title, str) or not title.strip():
        raise InputError("the report needs a non-empty title")
    if isinstance(sections, Section):
        sections = [sections]
    sections = list(sections)
    for s in sections:
        if not isinstance(s, Section):
            raise InputError(f"render_html takes a list of Section objects; got {type(s).__name__}")
    ids: dict[str, int] = {}
    rendered = [_render_section(s, 0, ids) for s in sections]
    bodies = [r[0] for r in rendered]
    toc = "".join(f'<li><a href="#{sid}">{html.escape(s.title)}</a></li>' for s, (_, sid) in zip(sections, rendered))
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sub = f"<p>{html.escape(subtitle)}</p>" if subtitle else ""
    foot = html.escape(footer) if footer else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1>{sub}<p>generated {generated}</p></header>\n"
        f"<nav><ol>{toc}</ol></nav>\n<main>\n" + "\n".join(bodies) + "\n</main>\n"
        f"<footer>{foot}</footer>\n</body>\n</html>\n"
    )


def write_report(
    path: str | os.PathLike,
    title: str,
    sections: list[Section],
    *,
    subtitle: str = "",
    footer: str = "",
    overwrite: bool = False,
) -> Path:
    """Render the report and write it to ``path`` (an ``.html`` file) atomically.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from ..io._atomic import atomic_path

    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"{path}: a report must be written to an .html file")
    text = render_html(title, sections, subtitle=subtitle, footer=footer)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
