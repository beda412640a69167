"""What every index backend must do: subclass `IndexConformance` and provide an `index` fixture
that returns a fresh, empty `retain.index.Index` (retain's own tests run it for SQLite and
PostgreSQL). Every test applies to every backend: the one ability of an index,
``supports_multiple_hosts``, is about where it may be used, not about what it answers.

Filter semantics are checked against the reference in Python (`retain.query.Filter.matches`),
so a backend's query language cannot drift from what `Collection.filter` does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from retain.index import Index, IndexEntry
from retain.query import (
    TAGS,
    Condition,
    Field,
    Filter,
    Query,
    between,
    equal,
    field_value,
    ge,
    gt,
    has,
    le,
    lt,
    one_of,
)

CLASS = ("pkg.train", "Train")
OTHER = ("pkg.data", "Data")
REF = {"$interface": "ab" * 16, "class": "Data", "module": "pkg.data"}

# Config values chosen to meet at type boundaries: 1 == 1.0, True != 1, None, "", lists.
VALUES: list[Any] = [0, 1, 1.0, 2, 2.5, -3, 10**20, True, False, None, "", "1", "a", "b", "ab",
                     [1, 2], [1.0, 2], [], {}, REF]


# Integers beyond 64 bits (and one beyond the floats), and the floats next to them.
BIG: list[Any] = [2**1024, -(2**1024), 10**400, 2**63, 2**63 + 1, 2**64, -(2**63), -(2**63) - 1,
                  2**63 - 1, float(2**63), 2.0**64, 1e308, 5, 5.5, "x"]


def entry(n: int, config: dict[str, Any], *, klass: tuple[str, str] = CLASS, kind: str = "Interface",
          summary: dict[str, Any] | None = None, created: str | None = None) -> IndexEntry:
    """The index entry of id `n` (created later as `n` grows) with `config`."""
    return IndexEntry(
        id=f"{n:032x}",
        module=klass[0],
        qualname=klass[1],
        kind=kind,
        created=created or f"2026-01-01T00:00:{n // 1000:02d}.{n % 1000:06d}Z",
        config=config,
        canonical=config,
        summary=summary,
    )


def ids(rows: list[Any]) -> list[str]:
    """The ids of selected rows, in order."""
    return [row[0] for row in rows]


def _equal_v(value: Any) -> Filter:
    return equal(value, "v")


def cond(path: str, filter: Filter, source: str = "config") -> Condition:
    """The condition that the field at `path` of `source` passes `filter`."""
    return Condition(Field(source, path, path), filter)


class IndexConformance:
    """Behaviour every `Index` backend shares: subclass it and provide an ``index`` fixture
    returning a fresh, empty index."""

    @pytest.fixture
    def index(self) -> Index:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    # -- primitives -------------------------------------------------------------------------

    def test_empty(self, index: Index) -> None:
        assert index.ids() == set()
        assert index.count(Query()) == 0
        assert index.select(Query([CLASS])) == []
        assert index.get_meta() == {}

    def test_upsert_select_newest_first(self, index: Index) -> None:
        index.upsert([entry(1, {"x": 1}), entry(3, {"x": 3}), entry(2, {"x": 2})])
        index.upsert([entry(4, {"x": 4}, klass=OTHER)])
        rows = index.select(Query([CLASS]))
        assert ids(rows) == [f"{n:032x}" for n in (3, 2, 1)]
        _, module, qualname, kind, created, config, summary, _ = rows[0]
        assert (module, qualname, kind, summary) == (*CLASS, "Interface", None)
        assert '"x"' in config and created.endswith("Z")
        assert index.count(Query([CLASS])) == 3
        assert index.count(Query()) == 4
        assert index.ids() == {f"{n:032x}" for n in (1, 2, 3, 4)}

    def test_upsert_keeps_one_row_and_takes_new_summaries(self, index: Index) -> None:
        index.upsert([entry(1, {"x": 1})])
        index.upsert([entry(1, {"x": 1}, summary={"loss": 0.5})])
        index.upsert([entry(1, {"x": 1})])  # no summary: keeps the one stored
        rows = index.select(Query([CLASS]))
        assert len(rows) == 1 and rows[0][6] is not None and "0.5" in rows[0][6]
        assert len(index.select(Query([CLASS], conditions=[cond("x", equal(1, "x"))]))) == 1

    def test_one_upsert_may_name_an_id_twice(self, index: Index) -> None:
        index.upsert([entry(1, {"x": 1}), entry(1, {"x": 1}, summary={"loss": 0.5})])
        rows = index.select(Query([CLASS], conditions=[cond("x", equal(1, "x"))]))
        assert len(rows) == 1 and rows[0][6] is not None and "0.5" in rows[0][6]

    def test_remove(self, index: Index) -> None:
        index.upsert([entry(n, {"x": n, "tag": "t"}) for n in range(5)])
        index.remove([f"{1:032x}", f"{3:032x}", "f" * 32])
        assert index.ids() == {f"{n:032x}" for n in (0, 2, 4)}
        found = index.select(Query([CLASS], conditions=[cond("tag", equal("t", "tag"))]))
        assert sorted(ids(found)) == [f"{n:032x}" for n in (0, 2, 4)]
        assert index.select(Query([CLASS], conditions=[cond("x", equal(1, "x"))])) == []
        index.remove([])

    def test_replace_all_swaps_contents_and_meta(self, index: Index) -> None:
        index.upsert([entry(n, {"x": n}) for n in range(3)])
        index.set_meta({"keep": "old", "a": "1"})
        count = index.replace_all([entry(10 + n, {"x": n}) for n in range(4)], {"a": "2"})
        assert count == 4
        assert index.ids() == {f"{10 + n:032x}" for n in range(4)}
        assert index.get_meta()["a"] == "2"
        assert len(index.select(Query([CLASS], conditions=[cond("x", equal(2, "x"))]))) == 1

    def test_replace_all_again_and_after_a_failure(self, index: Index) -> None:
        """Whatever a replacement sets up for itself (a staging table) is gone after it, and
        after one that failed half-way: the next one works and finds every value."""

        def failing() -> Iterator[IndexEntry]:
            yield entry(1, {"x": 1})
            raise RuntimeError("a record could not be read")

        index.replace_all([entry(n, {"x": n, "y": [n]}) for n in range(3)], {})
        with pytest.raises(RuntimeError):
            index.replace_all(failing(), {})
        assert index.ids() == {f"{n:032x}" for n in range(3)}  # the failed one changed nothing
        index.replace_all([entry(n, {"x": n % 2, "y": [n]}) for n in range(5)], {})
        assert ids(index.select(Query([CLASS], conditions=[cond("x", equal(1, "x"))]))) == [f"{n:032x}" for n in (3, 1)]
        assert ids(index.select(Query([CLASS], conditions=[cond("y", equal([4], "y"))]))) == [f"{4:032x}"]

    def test_tags(self, index: Index) -> None:
        """Tags (`set_tags`, `tags`, a ``has`` condition) replace per id, go with removed rows
        and with `replace_all`, and combine with config conditions."""
        index.upsert([entry(n, {"x": n}) for n in range(4)])
        a, b, c = (f"{n:032x}" for n in range(3))
        index.set_tags([a, b], lambda wanted: {a: ["best", "v1"], b: ["v1"]})
        assert index.tags() == {a: ["best", "v1"], b: ["v1"]} and index.tags([b, c]) == {b: ["v1"]}
        tagged = Query([CLASS], conditions=[Condition(TAGS, has("v1"))])
        assert ids(index.select(tagged)) == [b, a] and index.count(tagged) == 2
        both = Query(None, None, [Condition(TAGS, has("best", "v1")), cond("x", equal(0, "x"))])
        assert ids(index.select(both)) == [a]
        index.set_tags([a], lambda wanted: {a: []})  # replaced: none left
        assert index.tags() == {b: ["v1"]}
        index.upsert([entry(2, {"x": 2})])
        fresh = entry(3, {"x": 3})
        fresh.tags = ["new"]  # an entry with tags sets them, also for a row that exists
        index.upsert([fresh])
        assert index.tags() == {b: ["v1"], fresh.id: ["new"]}
        index.remove([b])
        assert index.tags() == {fresh.id: ["new"]}
        again = entry(5, {"x": 5})
        again.tags = ["kept"]
        index.replace_all([entry(4, {"x": 4}), again], {})
        assert index.tags() == {again.id: ["kept"]}
        assert ids(index.select(Query(None, None, [Condition(TAGS, has("kept"))]))) == [again.id]

    def test_meta(self, index: Index) -> None:
        index.set_meta({"a": "1", "b": "x"})
        index.set_meta({"a": "2"})
        assert index.get_meta() == {"a": "2", "b": "x"}

    def test_present(self, index: Index) -> None:
        index.upsert([entry(n, {}) for n in range(3)])
        wanted = [f"{n:032x}" for n in range(6)]
        assert index.present(wanted) == set(wanted[:3])

    def test_ids_with_prefix(self, index: Index) -> None:
        # Neighbours of the prefix's range on both sides, digits and letters, "f" at the end.
        hexes = ["ab" + "0" * 30, "ab" + "f" * 30, "aa" + "f" * 30, "ac" + "0" * 30, "a9" + "0" * 30,
                 "f" * 32, "fe" + "0" * 30, "0" * 32]
        index.upsert([IndexEntry(id=h, module=CLASS[0], qualname=CLASS[1], kind="Interface",
                                 created=f"2026-01-01T00:00:0{n}Z", config={}, canonical={}, summary=None)
                      for n, h in enumerate(hexes)])
        for prefix in ("ab", "a", "f", "ff", "0", "9", "", "abf", "b"):
            assert index.ids_with_prefix(prefix) == {h for h in hexes if h.startswith(prefix)}, prefix

    def test_reset_starts_empty(self, index: Index) -> None:
        index.upsert([entry(1, {"x": 1})])
        index.reset()
        assert index.ids() == set()
        index.upsert([entry(2, {"x": 2})])
        assert index.ids() == {f"{2:032x}"}

    def test_threads_share_an_index(self, index: Index) -> None:
        def work(t: int) -> None:
            for n in range(25):
                index.upsert([entry(t * 100 + n, {"t": t})])

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(index.ids()) == 100
        assert index.count(Query([CLASS], conditions=[cond("t", equal(3, "t"))])) == 25

    # -- filters agree with the Python reference --------------------------------------------

    def _mixed(self, index: Index) -> list[IndexEntry]:
        entries = [entry(n, {"v": value, "nested": {"v": value}}) for n, value in enumerate(VALUES)]
        entries.append(entry(len(VALUES), {"other": 1}))  # no "v" at all
        index.upsert(entries)
        return entries

    @pytest.mark.parametrize(
        "filter",
        [
            *(equal(v, "v") for v in VALUES),
            lt(1), le(1), gt(1), ge(1), lt(2.5), gt(-3), ge(10**20), lt("ab"), le("a"), gt(""),
            ge("b"), gt("1"), between(0, 2), between(1.0, 1), between("a", "b"), between(2, 1),
            one_of([1, "a", None]), one_of([True]), one_of([[1, 2], REF]), one_of([]),
        ],
        ids=repr,
    )
    def test_filter_matches_python_reference(self, index: Index, filter: Filter) -> None:
        entries = self._mixed(index)
        for path in ("v", "nested.v"):
            query = Query([CLASS], conditions=[cond(path, filter)])
            expected = {
                e.id for e in entries
                if filter.matches(field_value(Field("config", path, path), e.config, None, {}))
            }
            assert set(ids(index.select(query))) == expected, (path, filter)
            assert index.count(query) == len(expected)

    def test_conditions_combine_with_and(self, index: Index) -> None:
        index.upsert([entry(n, {"a": n % 3, "b": n % 2, "s": f"k{n % 4}"}) for n in range(24)])
        query = Query([CLASS], conditions=[cond("a", equal(1, "a")), cond("b", equal(0, "b")),
                                           cond("s", one_of(["k0", "k2"]))])
        expected = {f"{n:032x}" for n in range(24) if n % 3 == 1 and n % 2 == 0 and n % 4 in (0, 2)}
        assert set(ids(index.select(query))) == expected

    def test_columns_kind_and_classes(self, index: Index) -> None:
        index.upsert([
            entry(1, {"x": 1}, created="2026-01-01T00:00:00.000001Z"),
            entry(2, {"x": 1}, created="2026-02-01T00:00:00.000001Z", kind="Component"),
            entry(3, {"x": 1}, klass=OTHER, created="2026-03-01T00:00:00.000001Z"),
        ])
        assert ids(index.select(Query(None, "Component"))) == [f"{2:032x}"]
        assert ids(index.select(Query([CLASS, OTHER]))) == [f"{n:032x}" for n in (3, 2, 1)]
        late = Query(None, None, [cond("created", ge("2026-02-01"), "column")])
        assert ids(index.select(late)) == [f"{n:032x}" for n in (3, 2)]
        by_class = Query(None, None, [cond("class", equal("Data", "class"), "column")])
        assert ids(index.select(by_class)) == [f"{3:032x}"]
        by_id = Query(None, None, [cond("id", equal(f"{1:032x}", "id"), "column")])
        assert ids(index.select(by_id)) == [f"{1:032x}"]
        mixed = Query(None, None, [cond("x", equal(1, "x")), cond("module", equal("pkg.data", "m"), "column")])
        assert ids(index.select(mixed)) == [f"{3:032x}"]
        assert index.select(Query([("no.such", "Class")])) == []

    def test_listing_is_select_without_the_texts(self, index: Index) -> None:
        index.upsert([entry(n, {"x": n % 3}, klass=CLASS if n % 2 else OTHER, summary={"loss": n / 4}) for n in range(1, 9)])
        index.upsert([entry(9, {"x": 0}, klass=CLASS, created="2026-01-01T00:00:00.000001Z")])
        for query in (
            Query([CLASS]), Query(None), Query([CLASS, OTHER], conditions=[cond("x", equal(0, "x"))]),
            Query([CLASS], summary_conditions=[cond("loss", lt(1), "summary")]), Query([("no.such", "Class")]),
        ):
            rows = index.query(query)
            listing = index.listing(query)
            assert listing.ids == ids(rows), query
            of = listing.of
            assert [listing.names[of if type(of) is int else of[k]] for k in range(len(rows))] == [
                (row[1], row[2], row[3]) for row in rows
            ], query

    def test_rows_by_id_and_scan_by_class(self, index: Index) -> None:
        index.upsert([entry(n, {"x": n}, klass=CLASS if n % 2 else OTHER) for n in range(1, 12)])
        everything = {row[0]: row for row in index.select(Query())}
        wanted = [f"{n:032x}" for n in (3, 4, 99, 7)]
        assert sorted(index.rows(wanted)) == sorted(everything[id] for id in wanted if id in everything)
        assert index.rows([]) == []
        scanned = [row for _, rows in index.scan([CLASS]) for row in rows]
        assert sorted(scanned) == sorted(row for row in everything.values() if row[2] == CLASS[1])
        assert sorted(row for _, rows in index.scan(None) for row in rows) == sorted(everything.values())
        assert [row for _, rows in index.scan([("no.such", "Class")]) for row in rows] == []
        # A table scan gives the same rows, in the same chunks and order, cut to their table
        # columns (id, created, config, summary, metrics).
        for classes in ([CLASS], None, [("no.such", "Class")]):
            assert list(index.table_scan(classes)) == [
                (places, [(row[0], row[4], row[5], row[6], row[7]) for row in rows]) for places, rows in index.scan(classes)
            ], classes
        if index.supports_row_ranges:  # a range of places: the rows of the pass with those
            listing = index.listing(Query())
            assert listing.places is not None
            middle = sorted(listing.places)[3:8]
            start, stop = middle[0], middle[-1]
            ranged = [(row, place) for places, rows in index.table_scan(None, (start, stop))
                      for row, place in zip(rows, places or ())]
            assert [place for _, place in ranged] == [p for p in sorted(listing.places) if start <= p < stop]
            assert [row for _, rows in index.table_scan([CLASS], (start, stop)) for row in rows] == [
                row for row, _ in ranged if row[0] in {r[0] for r in everything.values() if r[2] == CLASS[1]}
            ]
        listing = index.listing(Query())
        if listing.places is not None:  # places, where given, are the ones scan gives the rows
            place = dict(zip(listing.ids, listing.places))
            for places, rows in index.scan(None):
                assert places is not None and [place[row[0]] for row in rows] == list(places)

    def test_summary_conditions_in_query(self, index: Index) -> None:
        index.upsert([entry(n, {"x": n}, summary={"loss": n / 10, "ok": n % 2 == 0}) for n in range(6)])
        index.upsert([entry(9, {"x": 9}, summary={"loss": float("nan")})])
        query = Query([CLASS], summary_conditions=[cond("loss", lt(0.25), "summary")])
        assert sorted(ids(index.query(query))) == [f"{n:032x}" for n in range(3)]
        both = Query([CLASS], conditions=[cond("x", ge(1))],
                     summary_conditions=[cond("ok", equal(True, "ok"), "summary")])
        assert sorted(ids(index.query(both))) == [f"{n:032x}" for n in (2, 4)]

    @pytest.mark.parametrize("bulk", [False, True], ids=["upsert", "replace_all"])
    def test_integers_beyond_64_bits_are_stored_and_queried(self, index: Index, bulk: bool) -> None:
        # Beyond int64 (SQLite's integers) and beyond float (2**1024): exact, as in Python.
        entries = [entry(n, {"v": value}) for n, value in enumerate(BIG)]
        if bulk:
            index.replace_all(entries, {})
        else:
            index.upsert(entries)
        bounds = [2**1024, -(2**1024), 2**63, 2**63 + 1, 2**63 - 1, float(2**63), 2.0**64, 10**400, 5, 1e308]
        filters = [
            *(make(b) for b in bounds for make in (_equal_v, lt, le, gt, ge)),
            between(2**63, 2**64), between(2**63 + 1, 2**1024), one_of([2**63 + 1, 10**400, 5]),
        ]
        for filter in filters:
            query = Query([CLASS], conditions=[cond("v", filter)])
            expected = {e.id for e in entries if filter.matches(e.config["v"])}
            assert set(ids(index.select(query))) == expected, filter
            assert index.count(query) == len(expected), filter

    def test_metrics_are_stored_apart_from_the_summary_and_updated_alone(self, index: Index) -> None:
        index.upsert([entry(1, {"x": 1}, summary={"loss": 0.5})])
        update = entry(1, {"x": 1})
        update.metrics = {"loss": 0.25}
        index.upsert([update])
        index.upsert([entry(1, {"x": 1})])  # neither: both kept
        [row] = index.select(Query([CLASS]))
        assert len(row) == 8 and "0.5" in (row[6] or "") and "0.25" in (row[7] or "")
        again = entry(1, {"x": 1})
        again.metrics_text = '{"loss": 0.125}'  # as read from .retain.metrics-last.json
        index.upsert([again])
        assert "0.125" in (index.select(Query([CLASS]))[0][7] or "")
        assert "0.5" in (index.select(Query([CLASS]))[0][6] or "")

    def test_metric_conditions_in_query(self, index: Index) -> None:
        entries = [entry(n, {"x": n}, summary={"loss": 9.0}) for n in range(6)]
        for n, item in enumerate(entries):
            item.metrics = {"loss": n / 10}
        entries[5].metrics = {"loss": float("nan")}
        twice = entry(7, {"x": 7})
        twice.metrics = {"loss": 0.0}
        index.upsert([*entries, entry(7, {"x": 7}), twice])  # one id twice: the last metrics
        query = Query([CLASS], summary_conditions=[cond("loss", lt(0.25), "metrics")])
        assert sorted(ids(index.query(query))) == [f"{n:032x}" for n in (0, 1, 2, 7)]
        assert index.replace_all(entries, {}) == 6
        assert sorted(ids(index.query(query))) == [f"{n:032x}" for n in range(3)]

    def test_keys_that_collide_when_dotted_do_not_break_writes(self, index: Index) -> None:
        index.upsert([entry(1, {"a.b": 1, "a": {"b": 1}})])
        assert index.count(Query([CLASS], conditions=[cond("a.b", equal(1, "a.b"))])) == 1
        index.remove([f"{1:032x}"])
        assert index.ids() == set()

