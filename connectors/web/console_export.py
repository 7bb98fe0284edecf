"""The console's downloads: daily figures with their breakdowns, and comments, as CSV and XLSX.

One table shape for both formats, so a spreadsheet and a script read the
same columns: a row per touchpoint, day (in the policy's time zone),
dimension and group. A group with fewer answers than the open-data minimum
that day has its figures left empty and ``suppressed`` true, exactly as the
pages show it. Comments are exported as stored: redacted of contact details
before they were ever written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from openpyxl import Workbook
from pydantic import ValidationError

from engine.group_figures import group_lines
from schemas.history import Period
from schemas.responses import CommentReceived

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from connectors.web.history import Series
    from schemas.base import Scale

FIGURE_COLUMNS: Final = (
    "touchpoint_id",
    "day",
    "dimension",
    "group",
    "suppressed",
    "answers",
    "mean",
    "csat_share",
    "csat_low",
    "csat_high",
)
COMMENT_COLUMNS: Final = ("touchpoint_id", "received_at", "score", "text")


@dataclass(frozen=True, slots=True)
class FigureRow:
    """One line of the figures export."""

    touchpoint_id: str
    day: date
    dimension: str
    group: str
    suppressed: bool
    answers: int | None
    mean: float | None
    csat_share: float | None
    csat_low: float | None
    csat_high: float | None

    def values(self) -> tuple[str | int | float | bool | date | None, ...]:
        """Give the row's cells in :data:`FIGURE_COLUMNS` order."""
        return (
            self.touchpoint_id,
            self.day,
            self.dimension,
            self.group,
            self.suppressed,
            self.answers,
            self.mean,
            self.csat_share,
            self.csat_low,
            self.csat_high,
        )


def daily_rows(
    touchpoint_id: str,
    series: Mapping[tuple[str, str], Series],
    scale: Scale,
    *,
    first: date,
    last: date,
    min_answers: int,
    wait_limits: Sequence[int],
) -> list[FigureRow]:
    """Give each local day's figures per group from the daily history, ``first`` to ``last``."""
    rows: list[FigureRow] = []
    day = first
    while day <= last:
        number = day.toordinal()
        counts = {
            group: one.tally(Period.DAY, number, number).scores for group, one in series.items()
        }
        lines = group_lines(counts, scale, min_answers=min_answers, wait_limits=wait_limits)
        rows.extend(
            FigureRow(
                touchpoint_id,
                day,
                line.dimension,
                line.value,
                line.suppressed,
                line.count,
                line.mean,
                line.csat_share,
                line.csat_low,
                line.csat_high,
            )
            for line in lines
        )
        day += timedelta(days=1)
    return rows


def live_comments(records: Iterable[tuple[bytes | None, bytes | None]]) -> list[CommentReceived]:
    """Give the comments of a stretch of the comments topic that no later tombstone erased."""
    by_key: dict[bytes, CommentReceived] = {}
    for key, value in records:
        if key is None:
            continue
        if value is None:
            by_key.pop(key, None)  # a citizen asked to be forgotten
            continue
        try:
            by_key[key] = CommentReceived.model_validate_json(value)
        except ValidationError:
            continue
    return sorted(by_key.values(), key=lambda comment: comment.received_at)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    # A spreadsheet runs a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """Write UTF-8 CSV with a byte-order mark, which spreadsheet programs need for ä and ö."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[object]]]]) -> bytes:
    """Write a workbook with one sheet per (title, columns, rows); numbers stay numbers."""
    book = Workbook()
    book.remove(book.active)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(columns))
        for row in rows:
            sheet.append([_xlsx_cell(value) for value in row])
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # XLSX has no zones: local time, as the page shows
    if isinstance(value, str):
        return _cell(value)
    return value
