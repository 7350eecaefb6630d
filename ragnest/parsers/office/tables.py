"""HTML tables (what unstructured gives in ``text_as_html``) as Markdown tables.

Merged cells are expanded and shown once; long tables are cut into parts of whole
rows that each repeat the header row, so every part reads on its own::

    >>> print(html_table_to_markdown("<table><tr><th>Part</th></tr><tr><td>Pump</td></tr></table>"))
    | Part |
    | --- |
    | Pump |
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["html_table_to_markdown", "markdown_table_parts"]


class _TableParser(HTMLParser):
    """Rows of cell texts of the first table in an HTML fragment (nested tables flattened
    into their cell), with ``colspan``/``rowspan`` expanded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, int]]] = []
        self.depth = 0
        self.cell: list[str] | None = None
        self.span = (1, 1)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.depth += 1
        elif self.depth == 1 and tag == "tr":
            self.rows.append([])
        elif self.depth == 1 and tag in ("td", "th"):
            self._close_cell()
            values = dict(attrs)
            self.cell = []
            self.span = (_int_attr(values.get("colspan")), _int_attr(values.get("rowspan")))
        if self.cell is not None and tag in ("br", "p", "div", "li", "td", "th", "tr"):
            self.cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.depth -= 1
        elif self.depth == 1 and tag in ("td", "th", "tr"):
            self._close_cell()

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def _close_cell(self) -> None:
        if self.cell is None:
            return
        if not self.rows:
            self.rows.append([])
        text = " ".join("".join(self.cell).split())
        self.rows[-1].append((text, *self.span))
        self.cell = None


def _int_attr(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


def _table_grid(html: str) -> list[list[str]]:
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    parser._close_cell()
    grid: list[list[str]] = []
    pending: dict[int, tuple[int, str]] = {}  # column -> (rows still spanned, text)
    for row in parser.rows:
        out: list[str] = []
        cells = iter(row)
        col = 0
        while True:
            if col in pending:
                left, text = pending[col]
                out.append("")  # a row-spanned cell is shown once, in its first row
                if left <= 1:
                    del pending[col]
                else:
                    pending[col] = (left - 1, text)
                col += 1
                continue
            cell = next(cells, None)
            if cell is None:
                if any(c >= col for c in pending):
                    out.append("")
                    col += 1
                    continue
                break
            text, colspan, rowspan = cell
            for k in range(colspan):
                out.append(text if k == 0 else "")
                if rowspan > 1:
                    pending[col] = (rowspan - 1, text)
                col += 1
        if out:
            grid.append(out)
    return grid


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def html_table_to_markdown(html: str) -> str:
    """A Markdown (GFM) table from an HTML ``<table>``; the first row is the header.

    Merged cells are shown once (in their first row and column). Returns ``""`` when
    the HTML holds no cell text.

    >>> print(html_table_to_markdown(
    ...     "<table><tr><th>Part</th><th>Qty</th></tr><tr><td>Pump</td><td>1</td></tr>"
    ...     "<tr><td colspan='2'>a|b</td></tr></table>"))
    | Part | Qty |
    | --- | --- |
    | Pump | 1 |
    | a\\|b |  |
    """
    grid = _table_grid(html)
    if not any(cell for row in grid for cell in row):
        return ""
    width = max(len(row) for row in grid)
    lines = []
    for i, row in enumerate(grid):
        cells = [_md_cell(c) for c in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("| " + " | ".join(["---"] * width) + " |")
    return "\n".join(lines)


def markdown_table_parts(table: str, max_chars: int) -> list[str]:
    """Cut a Markdown table longer than ``max_chars`` into tables of whole rows, each
    repeating the header row (a single over-long row stays whole).

    >>> md = "| a |\\n| --- |\\n| 1 |\\n| 2 |\\n| 3 |"
    >>> markdown_table_parts(md, 25)
    ['| a |\\n| --- |\\n| 1 |\\n| 2 |', '| a |\\n| --- |\\n| 3 |']
    """
    if len(table) <= max_chars:
        return [table]
    lines = table.split("\n")
    if len(lines) < 3 or not lines[1].startswith("| ---"):
        return [table]
    head = "\n".join(lines[:2])
    parts: list[str] = []
    current = head
    for line in lines[2:]:
        if current != head and len(current) + 1 + len(line) > max_chars:
            parts.append(current)
            current = head
        current = f"{current}\n{line}"
    if current != head:
        parts.append(current)
    return parts
