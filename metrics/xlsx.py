"""A minimal Office Open XML (ECMA-376) workbook writer, standard library only.

Only what a report needs: several sheets of strings and numbers, inline strings (no
shared-string table) and no styles.  Zip entries carry a fixed timestamp so the same
report always gives the same bytes.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape

Cell = str | int | float | None
Sheet = tuple[str, Sequence[Sequence[Cell]]]

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_BAD_NAME = re.compile(r"[\[\]:*?/\\]")


def workbook(sheets: Sequence[Sheet]) -> bytes:
    """The .xlsx bytes of `sheets`, each a (name, rows) pair."""
    names = [_sheet_name(name, i) for i, (name, _) in enumerate(sheets, 1)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        _put(archive, "[Content_Types].xml", _content_types(len(sheets)))
        _put(archive, "_rels/.rels", _root_rels())
        _put(archive, "xl/workbook.xml", _workbook(names))
        _put(archive, "xl/_rels/workbook.xml.rels", _workbook_rels(len(sheets)))
        for i, (_, rows) in enumerate(sheets, 1):
            _put(archive, f"xl/worksheets/sheet{i}.xml", _worksheet(rows))
    return buffer.getvalue()


def _put(archive: zipfile.ZipFile, name: str, xml: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + xml)


def _sheet_name(name: str, index: int) -> str:
    # Excel refuses sheet names over 31 characters or with []:*?/\ in them.
    cleaned = _BAD_NAME.sub("_", name)[:31]
    return cleaned or f"Sheet{index}"


def _content_types(n: int) -> str:
    sheets = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_CT}.worksheet+xml"/>'
        for i in range(1, n + 1)
    )
    return (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
        f"{sheets}</Types>"
    )


def _root_rels() -> str:
    return (
        f'<Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )


def _workbook(names: Sequence[str]) -> str:
    sheets = "".join(
        f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{i}" r:id="rId{i}"/>'
        for i, name in enumerate(names, 1)
    )
    return f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{sheets}</sheets></workbook>'


def _workbook_rels(n: int) -> str:
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, n + 1)
    )
    return f'<Relationships xmlns="{_PKG_REL}">{rels}</Relationships>'


def _worksheet(rows: Sequence[Sequence[Cell]]) -> str:
    body = "".join(
        f'<row r="{r}">{"".join(_cell(r, c, v) for c, v in enumerate(row))}</row>'
        for r, row in enumerate(rows, 1)
    )
    return f'<worksheet xmlns="{_MAIN}"><sheetData>{body}</sheetData></worksheet>'


def _cell(row: int, col: int, value: Cell) -> str:
    ref = f"{column_letter(col)}{row}"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, int):
        return f'<c r="{ref}"><v>{int(value)}</v></c>'
    if isinstance(value, float):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    text = escape(_xml_safe(value))
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _xml_safe(text: str) -> str:
    # XML 1.0 forbids most control characters; drop them rather than write a broken file.
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20)


def column_letter(index: int) -> str:
    """Zero-based column index to its letters: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
