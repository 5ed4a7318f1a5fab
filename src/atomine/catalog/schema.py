"""Tables of the catalog (SQLAlchemy Core), shared by SQLite and PostgreSQL.

One row of ``datasets`` is one signal of one file, identified by its content hash
(file SHA-256 + ":" + signal index). Lists and dicts are stored as JSON text so that
the same schema runs on every backend; the fields that filters use are plain columns
(normalised units: nm, eV, kV, ISO dates) or rows of ``descriptors`` / ``terms``.

The indexes that speed up filters (and the covering (field, value, id) / (name, value, id)
indexes of terms and descriptors) are added by migrations 2 and 4 (see
:mod:`atomine.catalog.migrations`), not declared here, so that a version-1 file and
a fresh one end in the same state.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

datasets = sa.Table(
    "datasets", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("content_hash", sa.String(200), nullable=False, unique=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("signal_index", sa.Integer, nullable=False, default=0),
    sa.Column("file_size", sa.BigInteger),
    sa.Column("modified", sa.String(40)),
    sa.Column("kind", sa.String(40)),
    sa.Column("signal", sa.String(80)),
    sa.Column("shape", sa.Text),                 # JSON list of ints
    sa.Column("dtype", sa.String(40)),
    sa.Column("pixel_size_nm", sa.Float),
    sa.Column("energy_min", sa.Float),           # eV (V for CITS)
    sa.Column("energy_max", sa.Float),
    sa.Column("instrument", sa.Text),
    sa.Column("beam_energy_kv", sa.Float),
    sa.Column("magnification", sa.Float),
    sa.Column("detector", sa.Text),
    sa.Column("acquisition_date", sa.String(40)),  # ISO; string order == time order
    sa.Column("operator", sa.Text),
    sa.Column("sample", sa.Text),
    sa.Column("elements", sa.Text),              # JSON list
    sa.Column("title", sa.Text),
    sa.Column("tags", sa.Text),                  # JSON list
    sa.Column("metadata", sa.Text),              # JSON dict (normalised)
    sa.Column("vector_kind", sa.String(80)),
    sa.Column("added", sa.String(40)),
    sa.Column("updated", sa.String(40)),
    # Searchable text, denormalised so that the full-text index can follow the row
    # with plain SQL triggers (no Python in the sync path).
    sa.Column("elements_text", sa.Text),
    sa.Column("tags_text", sa.Text),
    sa.Column("metadata_text", sa.Text),
    sa.Column("original_text", sa.Text),
    # "content" or "metadata" (headers only, no array hash/thumbnail/descriptors); added by migration 3
    sa.Column("content_level", sa.String(16), nullable=False, server_default="content"),
)

dataset_paths = sa.Table(
    "dataset_paths", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("seen", sa.String(40), nullable=False),
)

# Exact-match list values (element, tag) and the hashes an analysis may cite
# (content hash, file hash, array hash): one indexed row each.
terms = sa.Table(
    "terms", metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("field", sa.String(40), nullable=False),
    sa.Column("value", sa.String(200), nullable=False),
    sa.PrimaryKeyConstraint("dataset_id", "field", "value"),
)

descriptors = sa.Table(
    "descriptors", metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("dataset_id", "name"),
)

vectors = sa.Table(
    "vectors", metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(80), nullable=False, index=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=False),   # float32, little-endian
)

thumbnails = sa.Table(
    "thumbnails", metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("png", sa.LargeBinary, nullable=False),
)

analyses = sa.Table(
    "analyses", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("workflow", sa.String(120)),
    sa.Column("atomine_version", sa.String(40)),
    sa.Column("time", sa.String(40)),
    sa.Column("parameters", sa.Text),   # JSON
    sa.Column("outputs", sa.Text),      # JSON list
    sa.Column("summary", sa.Text),      # JSON
)

analysis_inputs = sa.Table(
    "analysis_inputs", metadata,
    sa.Column("analysis_id", sa.Integer, sa.ForeignKey("analyses.id", ondelete="CASCADE"), nullable=False),
    sa.Column("input_hash", sa.String(200), nullable=False),
    sa.PrimaryKeyConstraint("analysis_id", "input_hash"),
    sa.Index("ix_analysis_inputs_hash", "input_hash"),
)

# Small key/value state; "vectors_generation" counts every change to ``vectors`` so that caches of
# vector indexes (approximate nearest neighbours) know when to rebuild. Added by migration 3.
catalog_state = sa.Table(
    "catalog_state", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

failures = sa.Table(
    "failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("time", sa.String(40), nullable=False),
)

# Plain columns a filter may name (anything else is a descriptor or a term).
FILTER_COLUMNS = ("path", "name", "kind", "signal", "dtype", "pixel_size_nm", "energy_min", "energy_max",
                  "instrument", "beam_energy_kv", "magnification", "detector", "acquisition_date", "operator",
                  "sample", "title", "file_size", "modified", "signal_index", "content_hash", "vector_kind",
                  "content_level")

__all__ = ["metadata", "schema_version", "datasets", "dataset_paths", "terms", "descriptors", "vectors",
           "thumbnails", "analyses", "analysis_inputs", "catalog_state", "failures", "FILTER_COLUMNS"]
