"""Load many patients' CGM readings in one ordered query into the kernels' ragged arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from clinic_portal.upload_station.models import CgmReadingRow

_CHUNK_ROWS = 50_000  # rows fetched per round trip; bounds the Python tuples alive at once


@dataclass(frozen=True, slots=True)
class CgmArrays:
    """Readings of several patients, patient-major (see ``analytics.api`` module doc).

    ``patient_ids[p]`` owns ``[indptr[p], indptr[p + 1])``; patients are in ascending id order
    and a requested patient without readings has an empty range.
    """

    values: npt.NDArray[np.float64]  # mg/dL
    times: npt.NDArray[np.int64]  # epoch s UTC
    utc_offsets: npt.NDArray[np.int64]  # minutes
    indptr: npt.NDArray[np.int64]
    patient_ids: npt.NDArray[np.int64]


def load_cgm(
    session_or_connection: Session | Connection,
    patient_ids: Sequence[int],
    start: int,
    end: int,
) -> CgmArrays:
    """CGM readings of ``patient_ids`` with ``start <= time < end`` (epoch s UTC).

    One query ordered by (patient, time, id), read column-wise into numpy in chunks; rows are
    returned as stored (the API sorts out duplicates from several devices, keeping the first).
    """
    ids = np.unique(np.asarray(list(patient_ids), dtype=np.int64))
    table = CgmReadingRow.__table__  # type: ignore[attr-defined]
    query = (
        sa.select(table.c.patient_id, table.c.time, table.c.utc_offset, table.c.glucose)
        .where(table.c.patient_id.in_(ids.tolist()), table.c.time >= start, table.c.time < end)
        .order_by(table.c.patient_id, table.c.time, table.c.id)
        .execution_options(yield_per=_CHUNK_ROWS)
    )
    pids: list[np.ndarray] = []
    times: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    values: list[np.ndarray] = []
    result = session_or_connection.execute(query)
    for rows in result.partitions(_CHUNK_ROWS):
        pid, t, off, gl = zip(*rows, strict=True)
        pids.append(np.fromiter(pid, np.int64, len(rows)))
        times.append(np.fromiter(t, np.int64, len(rows)))
        offsets.append(np.fromiter(off, np.int64, len(rows)))
        values.append(np.fromiter(gl, np.float64, len(rows)))
    pid_all = np.concatenate(pids) if pids else np.empty(0, np.int64)
    indptr = np.zeros(ids.size + 1, dtype=np.int64)
    indptr[1:] = np.searchsorted(pid_all, ids, side="right")
    return CgmArrays(
        values=np.concatenate(values) if values else np.empty(0),
        times=np.concatenate(times) if times else np.empty(0, np.int64),
        utc_offsets=np.concatenate(offsets) if offsets else np.empty(0, np.int64),
        indptr=indptr,
        patient_ids=ids,
    )
