"""A survey's rows on disk: appended as they come, resumable, rewritten in order at the end.

Package-internal. ``survey.csv`` is the one file that cannot be written
atomically as a whole, because a killed run must keep its rows: each row is
one ``write`` of a complete line, flushed and synced, and a line cut short by
a kill is dropped when the run is resumed. At the end the file is rewritten
atomically in the input order, so serial, local and cluster runs give the same
file. Numbers are written as Python's shortest round-trip text, so reading
the CSV back gives the same floats bit for bit.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svdimage._fileutil import atomic_path, check_writable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SurveyStore", "read_survey"]

CSV_NAME = "survey.csv"
PARQUET_NAME = "survey.parquet"
#: What else a survey writes into its folder (never overwritten without ``force``).
OTHER_OUTPUTS = (PARQUET_NAME, "summary.md", "rd_curves.png", "target_ranks.png")
#: Columns read as text; every other column is numeric (empty: missing).
TEXT_COLUMNS = ("path", "mode", "method", "error")


def cell(value: Any) -> str:
    """One CSV field: integers as integers, floats round-trip exact, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) or (hasattr(value, "dtype") and value.dtype.kind in "iu"):
        return str(int(value))
    if isinstance(value, float) or (hasattr(value, "dtype") and value.dtype.kind == "f"):
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    return str(value)


def _line(fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


class SurveyStore:
    """The rows of one survey, in memory and (with a folder) in ``survey.csv``."""

    def __init__(
        self,
        folder: str | os.PathLike[str] | None,
        columns: list[str],
        *,
        resume: bool,
        force: bool,
    ) -> None:
        self.columns = columns
        self.rows: dict[str, list[str]] = {}
        self.path = None if folder is None else Path(folder) / CSV_NAME
        if self.path is None:
            return
        folder = Path(folder)  # type: ignore[arg-type]
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"output {str(folder)!r} is a file, not a folder.")
        if self.path.exists() and resume:
            self._read_earlier()
            return
        if self.path.exists() and not force:
            raise FileExistsError(
                f"{str(self.path)!r} exists: pass --resume to continue that survey, "
                "or --force to start over."
            )
        others = [folder / name for name in OTHER_OUTPUTS if (folder / name).exists()]
        if others and not force:
            raise FileExistsError(
                f"output {str(others[0])!r} already exists; pass --force to overwrite it, "
                "or choose another folder."
            )
        check_writable(self.path, force=True)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PARQUET_NAME).unlink(missing_ok=True)  # an earlier survey's, now replaced
        with atomic_path(self.path, force=True) as tmp:
            tmp.write_text(_line(columns), encoding="utf-8")

    @property
    def done(self) -> set[str]:
        """The sources that already have a row."""
        return set(self.rows)

    def _read_earlier(self) -> None:
        assert self.path is not None
        with open(self.path, "rb") as file:
            raw = file.read()
        complete = raw[: raw.rfind(b"\n") + 1]  # a line cut short by a kill is dropped
        if len(complete) != len(raw):
            with open(self.path, "r+b") as file:
                file.truncate(len(complete))
        lines = list(csv.reader(io.StringIO(complete.decode("utf-8"))))
        if not lines or lines[0] != self.columns:
            raise ValueError(
                f"{str(self.path)!r} was written with other rates or targets; resume it with "
                "the same --bpp and --targets, or pass --force to start over."
            )
        for fields in lines[1:]:
            if len(fields) == len(self.columns):
                self.rows[fields[0]] = fields

    def append(self, row: dict[str, Any]) -> None:
        """Add one image's row (and, with a folder, write it to disk at once)."""
        fields = [cell(row.get(column)) for column in self.columns]
        self.rows[fields[0]] = fields
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(_line(fields))
                file.flush()
                os.fsync(file.fileno())

    def finish(self, *, order: Sequence[str]) -> pd.DataFrame:
        """Rows in ``order`` (then any other earlier rows); rewrite the files; a DataFrame."""
        ordered = [self.rows[source] for source in order if source in self.rows]
        known = set(order)
        ordered += [fields for source, fields in self.rows.items() if source not in known]
        text = "".join(_line(fields) for fields in [self.columns, *ordered])
        if self.path is not None:
            with atomic_path(self.path, force=True) as tmp:
                tmp.write_text(text, encoding="utf-8")
        frame = _frame(text)
        if self.path is not None:
            _write_parquet(frame, self.path.with_name(PARQUET_NAME))
        return frame


def _frame(text: str) -> pd.DataFrame:
    """The CSV's text as a DataFrame: text columns as str, the rest as float64 parsed by
    Python's ``float`` (exact for the round-trip text :func:`cell` writes), NaN for empty."""
    import pandas as pd

    lines = list(csv.reader(io.StringIO(text)))
    header, rows = lines[0], lines[1:]
    columns = {}
    for index, name in enumerate(header):
        values = [row[index] for row in rows]
        if name in TEXT_COLUMNS:
            columns[name] = pd.Series(values, dtype=object)
        else:
            columns[name] = pd.Series(
                [float(v) if v else math.nan for v in values], dtype="float64"
            )
    return pd.DataFrame(columns, columns=header)


def read_survey(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A ``survey.csv`` (or the folder holding it) as the DataFrame :func:`survey` returned."""
    path = Path(path)
    if path.is_dir():
        path = path / CSV_NAME
    return _frame(path.read_text(encoding="utf-8"))


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return
    with atomic_path(path, force=True) as tmp:
        frame.to_parquet(tmp, index=False)
