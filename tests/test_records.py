"""The output record is declared once (graphie.records.RECORD_FIELDS): what ``to_record`` writes,
the Arrow schema and the table in the docs all follow that declaration."""

from pathlib import Path

import pyarrow as pa

from graphie.records import RECORD_FIELDS, ArrayOf, ErrorRecord, record_fields, record_schema, record_table
from graphie.types import Entity, Extraction, Relation, Span

ROOT = Path(__file__).resolve().parent.parent


PYTHON_TYPES = {"integer": int, "number": float, "string": str, "boolean": bool, "id": (str, int)}


def assert_follows(record, fields, where="record"):
    """``record`` has exactly the declared ``fields``, in order, each value of its declared kind
    (objects and every item of arrays checked the same way, all the way down)."""
    assert isinstance(record, dict) and list(record) == [f.name for f in fields], (where, list(record))
    for f in fields:
        check_value(record[f.name], f.kind, f.nullable, f"{where}.{f.name}")


def check_value(value, kind, nullable, where):
    if value is None:
        assert nullable, f"{where} is null but not declared nullable"
    elif isinstance(kind, ArrayOf):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            check_value(item, kind.item, False, f"{where}[{i}]")
    elif isinstance(kind, tuple):
        assert_follows(value, kind, where)
    else:
        assert isinstance(value, PYTHON_TYPES[kind]) and (kind == "boolean") == isinstance(value, bool), \
            f"{where}: {value!r} is not {kind}"


def full_extraction():
    """An extraction with an entity with evidence and a relation: every nested field present."""
    obama = Entity(Span(0, 2, "Barack Obama", 0, 12), "PER", 0.99,
                   [{"object": 1, "label": "person", "weight": 0.7}])
    house = Entity(Span(4, 7, "the White House", 16, 31), "LOC", 0.95,
                   [{"object": 2, "label": "building", "weight": 0.5}])
    tokens = "Barack Obama visits at the White House".split()
    return Extraction(text=" ".join(tokens), tokens=tokens, entities=[obama, house],
                      relations=[Relation(obama, house, "locate_at", 0.8)], id="p1", warnings=["not English"])


def test_extraction_record_has_exactly_the_declared_fields():
    record = full_extraction().to_record()
    assert all(record[k] for k in ("entities", "relations", "warnings"))  # every nested field is there to check
    assert all(e["evidence"] for e in record["entities"])
    assert_follows(record, record_fields())


def test_error_record_has_exactly_the_declared_fields_and_nothing_found():
    error = ErrorRecord(7, "InvalidInputError", "input 7: text is empty", "text")
    record = error.to_record()
    assert_follows(record, record_fields())
    assert record["error"] == {"type": "InvalidInputError", "field": "text", "message": "input 7: text is empty"}
    assert (record["id"], record["entities"], record["relations"], record["windows"], record["truncated"],
            record["warnings"]) == (7, [], [], 0, False, [])


def test_the_arrow_schema_holds_both_records_unchanged():
    rows = [full_extraction().to_record(), ErrorRecord("p2", "ImageError", "no such image", "image").to_record()]
    table = pa.Table.from_pylist(rows, schema=record_schema(pa.string()))
    assert table.to_pylist() == rows
    with_line = record_schema(pa.int64(), with_line=True)
    assert with_line.names == [f.name for f in RECORD_FIELDS]
    assert "line" not in record_schema(pa.int64()).names


def test_the_docs_table_is_the_one_the_declaration_generates():
    committed = (ROOT / "docs" / "_generated" / "output_record.md").read_text(encoding="utf-8")
    assert committed == record_table(), "stale: python tools/refresh_doc_outputs.py rewrites it"
    for f in RECORD_FIELDS:
        assert f"| `{f.name}` |" in committed
    assert "| `entities[].evidence[].weight` | number |" in committed


def test_the_batch_tutorial_includes_the_generated_table_and_no_copy_of_it():
    page = (ROOT / "docs" / "tutorials" / "batch.md").read_text(encoding="utf-8")
    assert "```{include} ../_generated/output_record.md" in page
    assert not any(line.startswith("| `entities`") or line.startswith("| key |") for line in page.splitlines())
