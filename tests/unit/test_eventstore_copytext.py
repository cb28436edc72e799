"""COPY's text format, split and unescaped the way copypage.py reads a page."""

from __future__ import annotations

from lufy.eventstore.copypage import split_copy_text


def _copy_escape(value: str) -> bytes:
    """What COPY TO writes for a text value (CopyAttributeOutText)."""
    out = value.replace("\\", "\\\\")
    for char, letter in (("\b", "b"), ("\f", "f"), ("\n", "n"), ("\r", "r"), ("\t", "t")):
        out = out.replace(char, "\\" + letter)
    return out.replace("\v", "\\v").encode()


def _row(*values: str) -> bytes:
    return b"\t".join(_copy_escape(v) for v in values) + b"\n"


_SAFE = ["9", "t", "1", "100", "e1d7", "", "", "null", "", "1", "{}", "{}", "2026-12-06 21:00", "x"]


def _event(stream_type: str, stream_id: str, type_: str, data: str, meta: str) -> list[str]:
    row = list(_SAFE)
    row[5], row[6], row[8], row[10], row[11] = stream_type, stream_id, type_, data, meta
    return row


def test_a_page_without_backslashes_is_split_as_it_is() -> None:
    rows = [_event("s", "1", "t.x", '{"a": 1}', "{}"), _event("s", "2", "t.y", "{}", "{}")]
    fields = split_copy_text(b"".join(_row(*r) for r in rows))
    assert fields == [v.encode() for r in rows for v in r]


def test_escaped_values_come_back_exactly() -> None:
    awkward = [
        "tab\there",
        "new\nline\r\n",
        "back\\slash \\N \\t \\\\",
        "ctl \x01\x08\x0b\x0c\x1f\x7f",
        "unicode é 🎵 \u2028",
        "\\",
        "\\N",
        "",
    ]
    # JSONB text: a JSON string's escapes are backslashes, which COPY doubles.
    data = '{"note": "q\\" \\\\ \\n \\t \\u001f"}'
    rows = [_event(a, a + "!", "t\t" + a, data, '{"k": "\\\\"}') for a in awkward]
    rows.append(_event("plain", "1", "t.x", "{}", "{}"))
    fields = split_copy_text(b"".join(_row(*r) for r in rows))
    assert fields == [v.encode() for r in rows for v in r]


def test_the_empty_page_is_none() -> None:
    assert split_copy_text(b"12\tf\t" + b"\t".join([b"\\N"] * 12) + b"\n") is None
