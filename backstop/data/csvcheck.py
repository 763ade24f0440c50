"""Name the real cause of a CSV that cannot be read as comma-separated UTF-8, with its line.

polars reports a ragged row or a bad byte without a line number, and reads a
semicolon-separated file as one column or a duplicated header name as ``close_duplicated_0``,
which would surface later as a confusing "missing column" or not at all. These checks run on
the header (one line) or, for a file polars could not read, once on the failure path.
"""

from __future__ import annotations

import csv
from pathlib import Path

from backstop.errors import DataError

_SEPARATORS = ((";", "semicolon"), ("\t", "tab"), ("|", "pipe"))


def read_header(file: Path) -> list[str]:
    """The first record of a UTF-8 CSV (a byte-order mark is no part of the first name)."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            return [name.strip() for name in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def check_header(header: list[str], source: str) -> None:
    """Refuse a header that is another separator's single column, or names a column twice."""
    if len(header) == 1:
        for sep, name in _SEPARATORS:
            if sep in header[0]:
                raise DataError(
                    f"the header {header[0]!r} is one column: the file looks {name}-separated; "
                    "backstop reads comma-separated CSV (save it with commas)",
                    source=source,
                    row=1,
                )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(
                "the header names this column twice: which one is meant would be a guess",
                source=source,
                row=1,
                column=name,
            )
        seen.add(name)


def unreadable_csv(file: Path, source: str) -> DataError | None:
    """The error naming the line of a non-UTF-8 byte or a row with the wrong field count."""
    try:
        data = file.read_bytes()
    except OSError:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return not_utf8_error(data, exc, source)
    reader = csv.reader(text.splitlines())
    width = None
    try:
        for values in reader:
            if not values:
                continue
            if width is None:
                width = len(values)
            elif len(values) != width:
                return DataError(
                    f"expected {width} fields (as in the header), got {len(values)}",
                    source=source,
                    row=reader.line_num,
                )
    except csv.Error as exc:
        return DataError(f"not valid CSV: {exc}", source=source, row=reader.line_num)
    return None


def not_utf8_error(data: bytes, exc: UnicodeDecodeError, source: str) -> DataError:
    """Word a decoding failure: the line, the byte's position in it and its value."""
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    byte = data[exc.start]
    return DataError(
        f"byte 0x{byte:02x} at character {exc.start - line_start + 1} is not UTF-8 text "
        "(save the file as UTF-8; e.g. it was written as Latin-1 or Windows-1252)",
        source=source,
        row=line,
    )
