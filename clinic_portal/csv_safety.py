"""CSV written by the portal must not run as a spreadsheet formula (CSV injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable


def neutralize_csv_cell(value: str) -> str:
    """Return ``value`` safe to write into a CSV cell that a spreadsheet will open.

    Spreadsheets run a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab/CR before
    them) as a formula (OWASP "CSV Injection"). Importers keep such text unchanged; whoever
    *writes* CSV calls this, which prefixes a single quote. Plain negative numbers
    (``-1.5``) are left alone so numeric columns stay numeric.
    """
    if not value or value[0] not in "=+-@\t\r":
        return value
    if value[0] in "+-":
        try:
            float(value)
        except ValueError:
            pass
        else:
            return value
    return "'" + value


def csv_text(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A CSV document whose every text cell went through :func:`neutralize_csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralize_csv_cell(h) for h in header])
    for row in rows:
        writer.writerow(
            [neutralize_csv_cell(cell) if isinstance(cell, str) else cell for cell in row]
        )
    return out.getvalue()
