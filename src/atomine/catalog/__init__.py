"""A searchable catalog of datasets and analysis results: keyword, field and content search.

>>> from atomine.catalog import Catalog, ingest
>>> with Catalog("lab.sqlite") as cat:                       # doctest: +SKIP
...     ingest(cat, ["/data/2024"])
...     cat.search("signal:HAADF element:Mn beam_energy>=200 lattice_a:3.8..4.0A")

Modules: :mod:`.store` (the :class:`Catalog`, SQLAlchemy Core over SQLite or PostgreSQL),
:mod:`.ingest` (files and result folders to records), :mod:`.query` (the search syntax),
:mod:`.descriptors` (content signatures for ``similar``).
"""

# 'ingest' is both a submodule and the function: importing the function here, after the submodule
# has loaded, keeps atomine.catalog.ingest the function whatever is imported later.
from .ingest import IngestReport, ingest
from .query import FIELDS, Filter, Query, parse
from .records import AnalysisRecord, DatasetRecord
from .store import Catalog

__all__ = ["Catalog", "DatasetRecord", "AnalysisRecord", "IngestReport", "ingest", "parse", "Query", "Filter",
           "FIELDS"]
