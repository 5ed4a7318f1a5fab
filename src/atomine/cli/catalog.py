"""``atomine catalog add|search|similar|show|rm|stats``: the searchable catalog of datasets and results.

Every command takes ``--catalog PATH_OR_URL``; without it the per-user SQLite file is used
(``$ATOMINE_CATALOG`` overrides its location). ``--json`` prints machine-readable JSON only.
"""

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from ._output import guarded, out, print_info, print_warning, progress_bar

catalog_app = typer.Typer(
    name="catalog",
    help="A searchable catalog of datasets and analysis results (keyword, field and content search).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

CatalogOption = Annotated[Optional[str], typer.Option(
    "--catalog", help="Catalog file or database URL (sqlite:///..., postgresql://...); default: the per-user "
    "SQLite file, or $ATOMINE_CATALOG.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]


def _open(catalog: Optional[str]):
    from ..catalog import Catalog

    return Catalog(catalog)


def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars/arrays to Python, bytes dropped, NaN to null."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not isinstance(v, (bytes, bytearray))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _print_json(value: Any) -> None:
    # plain print, not rich: rich would wrap and colour the text
    typer.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else ", ".join(map(str, value))
    return str(value)


def _hits_table(title: str, hits: list[dict], columns: tuple[str, ...]) -> Table:
    table = Table(title=Text(title, style="bold"), title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in ("id", "score", "distance") else "left",
                         overflow="fold")
    for hit in hits:
        table.add_row(*(Text(_fmt(hit.get(col))) for col in columns))
    return table


@catalog_app.command("add")
@guarded
def add(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Files and folders to add.")],
    catalog: CatalogOption = None,
    no_recursive: Annotated[bool, typer.Option("--no-recursive", help="Do not descend into sub-folders.")] = False,
    no_descriptors: Annotated[bool, typer.Option(
        "--no-descriptors", help="Skip the content descriptors (no 'similar'); thumbnails still made.")] = False,
    metadata_only: Annotated[bool, typer.Option(
        "--metadata-only", help="Read headers only: file hash and metadata, no thumbnail, descriptors or "
        "array hash (fastest; a later add without it completes the records).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Add every readable file (each signal) and atomine result folder under PATH... to the catalog.

    Unchanged files are skipped, moved files recognised by their content hash; unreadable files are
    recorded with the reason and the rest continues.
    """
    from ..catalog import ingest
    from ..errors import InputError

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise InputError(f"{missing[0]} does not exist; pass files or folders to add")
    options = dict(recursive=not no_recursive, descriptors=not no_descriptors, content=not metadata_only)
    with _open(catalog) as cat:
        if as_json:
            report = ingest(cat, paths, **options)
        else:
            with progress_bar("adding to the catalog") as bar:
                report = ingest(cat, paths, progress=bar, **options)
        url = cat.url
    summary = {"catalog": url, "added": report.added, "unchanged": report.unchanged, "moved": report.moved,
               "updated": report.updated, "analyses": report.analyses,
               "failed": [{"path": str(p), "reason": r} for p, r in report.failed],
               "seconds": round(report.seconds, 3)}
    if as_json:
        _print_json(summary)
        return
    for path, reason in report.failed:
        print_warning(f"not added: {path}: {reason}")
    print_info(f"{report.added} added, {report.unchanged} unchanged, {report.moved} moved, {report.updated} updated, "
               f"{report.analyses} analyses, {len(report.failed)} failed in {report.seconds:.1f} s ({url})")


@catalog_app.command("search")
@guarded
def search(
    query: Annotated[str, typer.Argument(help="Words, \"phrases\" and filters such as signal:HAADF element:Mn "
                                         "beam_energy>=200 lattice_a:3.8..4.0A date:2024-01..2024-06.")] = "",
    catalog: CatalogOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Most hits to show.")] = 20,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many hits (paging).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Search the catalog: free text ranked by relevance, AND field filters (see 'atomine catalog fields')."""
    from ..catalog import parse
    from ..errors import InputError

    if limit < 1 or offset < 0:
        raise InputError(f"--limit must be at least 1 and --offset at least 0, got {limit} and {offset}")
    parsed = parse(query)  # a syntax error is reported before the catalog is opened (or created)
    with _open(catalog) as cat:
        hits = cat.search(parsed, limit=limit, offset=offset)
    if as_json:
        _print_json(hits)
        return
    if not hits:
        print_info("no match")
        return
    out.print(_hits_table(f"{len(hits)} hit(s) for {query!r}" if query else f"{len(hits)} dataset(s)", hits,
                          ("id", "signal", "kind", "shape", "name", "path")
                          + (("score", "snippet") if parsed.terms else ())))
    window = hits[0].get("ranked_over")
    if window:   # very common words: BM25 ranked only the newest matches (each hit carries it in --json)
        out.print(Text(f"ranked among the newest {window:,} of the matches", style="dim"), soft_wrap=True)


@catalog_app.command("fields")
@guarded
def fields() -> None:
    """List the search fields, their types and units."""
    from ..catalog.query import FIELDS

    table = Table(title=Text("search fields", style="bold"), title_justify="left")
    for col in ("field", "type", "unit", "meaning"):
        table.add_column(col)
    for spec in FIELDS.values():
        table.add_row(spec.name, spec.type, spec.unit or "", spec.help)
    out.print(table)


@catalog_app.command("similar")
@guarded
def similar(
    target: Annotated[str, typer.Argument(metavar="FILE_OR_ID", help="A dataset id in the catalog, or a data file "
                                          "(its descriptor is computed; nothing is added).")],
    catalog: CatalogOption = None,
    k: Annotated[int, typer.Option("-k", help="Number of neighbours.")] = 10,
    signal: Annotated[Optional[str], typer.Option(
        "--signal", help="Signal of a multi-signal FILE (name or index; default: the first with a descriptor).")] = None,
    as_json: JsonOption = False,
) -> None:
    """The datasets whose content looks most like FILE_OR_ID (descriptor nearest neighbours)."""
    from ..errors import InputError

    if k < 1:
        raise InputError(f"-k must be at least 1, got {k}")
    if target.isdigit():
        query: Any = int(target)
        kind = None
    else:
        query, kind = _file_vector(Path(target), signal)
    with _open(catalog) as cat:
        hits = cat.similar(query, k=k, kind=kind)
    if as_json:
        _print_json(hits)
        return
    if not hits:
        print_info("no comparable dataset in the catalog")
        return
    out.print(_hits_table(f"{len(hits)} nearest to {target}", hits, ("id", "distance", "path")))


def _file_vector(path: Path, signal: Optional[str]):
    """The content vector of one signal of a file, computed as ingest would, without adding it."""
    from ..catalog.ingest import records_from_file
    from ..errors import InputError

    if not path.exists():
        raise InputError(f"{path} is neither a dataset id nor an existing file")
    records = records_from_file(path)
    if signal is not None:
        records = [r for r in records if r.name == signal or str(r.signal_index) == signal]
        if not records:
            raise InputError(f"no signal {signal!r} in {path}; 'atomine info {path}' lists them")
    records = [r for r in records if r.vector is not None]
    if not records:
        raise InputError(f"no content descriptor could be computed for {path} (images and spectra only)")
    return records[0].vector, records[0].vector_kind


@catalog_app.command("show")
@guarded
def show(
    dataset_id: Annotated[int, typer.Argument(metavar="ID", help="Dataset id (from 'search').")],
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Everything the catalog knows about one dataset: fields, metadata, descriptors, linked analyses."""
    with _open(catalog) as cat:
        record = cat.get(dataset_id)
    if as_json:
        _print_json(record)
        return
    table = Table(title=Text(f"dataset {dataset_id}", style="bold"), title_justify="left", show_header=False,
                  box=None, pad_edge=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        if key in ("metadata", "analyses", "original_text", "descriptors", "vector") or value in (None, "", []):
            continue
        if key == "paths":  # history of where the file has been seen
            value = [p.get("path", "") if isinstance(p, dict) else p for p in value]
        table.add_row(Text(key), Text(_fmt(value)))
    for key, value in (record.get("descriptors") or {}).items():
        table.add_row(Text(f"descriptor {key}"), Text(_fmt(value)))
    out.print(table)
    for analysis in record.get("analyses") or []:
        print_info(f"analysis: {analysis.get('workflow', '?')} {analysis.get('path', '')} "
                   f"(atomine {analysis.get('atomine_version', '?')}, {analysis.get('time', '')})")


@catalog_app.command("rm")
@guarded
def rm(
    dataset_id: Annotated[int, typer.Argument(metavar="ID", help="Dataset id to remove (the file is not touched).")],
    catalog: CatalogOption = None,
) -> None:
    """Remove one dataset from the catalog (never the file itself)."""
    with _open(catalog) as cat:
        record = cat.get(dataset_id)  # an unknown id is an error before anything is removed
        cat.remove(dataset_id)
    print_info(f"removed dataset {dataset_id} ({record.get('path', '')})")


@catalog_app.command("stats")
@guarded
def stats(catalog: CatalogOption = None, as_json: JsonOption = False) -> None:
    """Counts per signal and kind, failures and the schema version."""
    with _open(catalog) as cat:
        info = cat.stats()
        url = cat.url
    info = {"catalog": url, **info}
    if as_json:
        _print_json(info)
        return
    table = Table(title=Text(f"catalog {url}", style="bold"), title_justify="left", show_header=False, box=None)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in info.items():
        if key in ("catalog", "url"):
            continue
        shown = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else _fmt(value)
        table.add_row(Text(key), Text(shown))
    out.print(table)
