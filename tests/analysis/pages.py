"""Reading report pages in tests: the links, images and tags of an HTML page."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


class Links(HTMLParser):
    """Every img src and a href of a page, and the tags it contains."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.alts: list[str] = []  # alt text of each image
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.alerts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "img":
            self.images.append(a.get("src") or "")
            self.alts.append(a.get("alt") or "")
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        if a.get("role") == "alert":
            self.alerts += 1


def parse(index: Path) -> Links:
    p = Links()
    p.feed(index.read_text(encoding="utf-8"))
    return p
