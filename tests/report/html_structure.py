"""Parse a report with html.parser into what the structural tests look at."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Page:
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    cell_texts: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    header_cells: list[dict[str, str | None]] = field(default_factory=list)
    body_rows_in_results: int = 0

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attributes for name, attributes in self.tags if name == tag]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._stack: list[str] = []
        self._in_results = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.page.tags.append((tag, attributes))
        if tag not in ("img", "meta", "br", "input"):
            self._stack.append(tag)
        if tag == "table" and "results" in (attributes.get("class") or ""):
            self._in_results = True
        if self._in_results and tag == "th":
            self.page.header_cells.append(attributes)
        if self._in_results and tag == "tr" and "tbody" in self._stack:
            self.page.body_rows_in_results += 1
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_results = False
        if tag == "td" and self._cell is not None:
            self.page.cell_texts.append("".join(self._cell))
            self._cell = None
        while self._stack:
            if self._stack.pop() == tag:
                break

    def handle_data(self, data: str) -> None:
        current = self._stack[-1] if self._stack else ""
        if current == "script":
            self.page.scripts.append(data)
        elif current == "style":
            self.page.styles.append(data)
        else:
            self.page.texts.append(data)
            if self._cell is not None:
                self._cell.append(data)


def parse(text: str) -> Page:
    collector = _Collector()
    collector.feed(text)
    collector.close()
    return collector.page
