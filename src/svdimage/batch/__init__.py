"""Whole datasets: one function over many images, and a dataset survey, on Dask.

Every batch runs on one engine: a local Dask cluster of one process per core
(one BLAS thread each), the running cluster at a ``scheduler`` address, or,
with ``workers=0``, this process alone; each image is one task, results come
back as they finish, and a failing image is a result with an error, never the
end of the run.

==================  ==========================================================
``_sources``        images found in folders (recursive) and globs, and URLs
``_engine``         :func:`map`: the tasks, the cluster, the stream of outcomes
``_survey``         :func:`survey`: per-image ranks and codecs at equal bytes
``_store``          ``survey.csv``: appended live, resumable, ordered at the end
``_summary``        :func:`summarize`: ``summary.md`` and its figures
``jobs``            one image's command (compress, sweep, reconstruct, denoise),
                    the same function for one image and for a folder
==================  ==========================================================

Examples
--------
>>> from svdimage import batch
>>> outcomes = batch.map(lambda url: url.rsplit("/", 1)[-1], ["https://example.org/a.png"],
...                      workers=0)
>>> [(o.source, o.value, o.error) for o in outcomes]
[('https://example.org/a.png', 'a.png', None)]
"""

from svdimage.batch._engine import Outcome, default_workers, map
from svdimage.batch._sources import find_images, is_url, output_path
from svdimage.batch._store import read_survey
from svdimage.batch._summary import bd_table, summarize
from svdimage.batch._survey import (
    DEFAULT_BPP,
    DEFAULT_TARGETS,
    survey,
    survey_columns,
    survey_image,
    survey_outputs,
)

__all__ = [
    "map",
    "survey",
    "survey_image",
    "survey_outputs",
    "summarize",
    "read_survey",
    "find_images",
    "is_url",
    "output_path",
    "Outcome",
    "survey_columns",
    "bd_table",
    "default_workers",
    "DEFAULT_BPP",
    "DEFAULT_TARGETS",
]
