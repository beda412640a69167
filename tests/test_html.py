"""Notebook views: `Interface._repr_html_` and `Collection._repr_html_`, parsed as HTML."""

from __future__ import annotations

from html.parser import HTMLParser
from retain import Component, Interface, get


class Parsed(HTMLParser):
    """Tags, text, and the cells of each table row."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self.captions: list[str] = []
        self._cell: list[str] | None = None
        self._caption = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._caption = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "caption":
            self._caption = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._caption:
            self.captions.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


class Note(Interface):
    Config = {"title": "", "model": {"depth": 2}}


class Fit(Component):
    Config = {"lr": 0.1, "title": ""}

    def __call__(self) -> None:
        self.save_file("weights.json", [1, 2])
        self.save_summary(loss=0.25, note="<b>bold</b>")
        self.log_metrics({"loss": 0.5}, step=0)


ATTACK = "<script>alert('x')</script>"


def test_an_interface_view_shows_config_summary_files_escaped() -> None:
    note = get(Note, {"title": ATTACK, "model": {"depth": 3}}).commit()
    note.save_summary(score=1.5)
    note.save_file("<img src=x>.txt", "hi")
    page = Parsed(note._repr_html_())
    assert "script" not in page.tags and "img" not in page.tags and "b" in page.tags
    text = page.all_text
    assert ATTACK in text and "<img src=x>.txt" in text and note.id in text and "committed" in text
    assert ["title", ATTACK] in page.rows and ["model.depth", "3"] in page.rows and ["score", "1.5"] in page.rows
    assert page.captions == ["config", "summary"]
    assert repr(note) == f"Note [{note.short_id}]"  # the plain repr stays short


def test_a_component_view_shows_its_status_and_last_metrics() -> None:
    run = get(Fit, {"title": ATTACK}).launch()
    page = Parsed(run._repr_html_())
    assert "script" not in page.tags
    text = page.all_text
    assert "status finished" in text and "weights.json" in text and ".retain." not in text
    assert ["note", "<b>bold</b>"] in page.rows and ["loss", "0.5"] in page.rows
    assert page.captions == ["config", "summary", "last metric values"]


def test_an_uncommitted_or_invalid_interface_still_has_a_view() -> None:
    page = Parsed(get(Note, {"title": "draft"})._repr_html_())
    assert "not committed" in page.all_text and ["title", "draft"] in page.rows
    bad = Note({"bogus": 1})  # an unknown key: shown as such, never raised
    text = Parsed(bad._repr_html_()).all_text
    assert "Note [invalid config]" in text and "could not read: ConfigError" in text and "bogus" in text


def test_a_collection_view_is_a_table_of_the_first_rows_with_the_count() -> None:
    for n in range(25):
        get(Fit, {"lr": n / 100, "title": ATTACK if n == 24 else f"t{n}"}).launch()
    runs = get.all(Fit)
    page = Parsed(runs._repr_html_())
    assert "script" not in page.tags
    header, *rows = page.rows
    assert header[:3] == ["id", "class", "created"]
    assert {"lr", "title", "summary.loss", "summary.note", "metrics.loss"} <= set(header)
    assert len(rows) == 20
    assert "Collection of 25 Fit" in page.all_text and "first 20" in page.all_text
    title = header.index("title")
    assert rows[0][title] == ATTACK  # newest first
    assert rows[0][header.index("metrics.loss")] == "0.5"
    assert repr(runs) == "<Collection of 25 Fit>"
    empty = Parsed(get.all(Fit, where={"lr": 5})._repr_html_())
    assert empty.rows == [] and "Collection of 0 Fit" in empty.all_text
