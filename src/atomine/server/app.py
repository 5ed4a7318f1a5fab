"""The catalog's REST API (FastAPI) and its web page: :func:`create_app`.

Endpoints are synchronous: FastAPI runs them in its thread pool, and the Catalog's engine is
thread safe. Every error is ``{"detail": "<one line>"}`` with 400 (bad input), 401/403 (writes),
404 (unknown id or file), 413/414 (oversized request). Reads are always allowed; ingest and delete
need a token given at start-up and sent as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import math
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from .. import __version__
from ..errors import AtomineError, InputError
from . import _files
from ._ingest import ingest_paths
from ._security import REPORT_CSP, GuardMiddleware, require_token

STATIC = Path(__file__).with_name("static")
MAX_LIMIT, MAX_K = 200, 100


# -- response models (the OpenAPI schema; responses are built as plain JSON) -------------------------
class SearchHit(BaseModel):
    id: int
    path: str
    name: Optional[str] = None
    signal: Optional[str] = None
    kind: Optional[str] = None
    shape: list[int] = []
    title: Optional[str] = None
    pixel_size_nm: Optional[float] = Field(None, description="pixel size in nm (null when uncalibrated)")
    beam_energy_kv: Optional[float] = None
    content_level: Optional[str] = Field(None, description="content, or metadata for a --metadata-only entry")
    score: float = Field(description="BM25 relevance, higher is better; 0 for filter-only queries")
    snippet: str = ""
    thumbnail: Optional[str] = Field(None, description="URL of the PNG thumbnail, null when there is none")


class SearchResult(BaseModel):
    query: str
    limit: int
    offset: int
    hits: list[SearchHit]
    ranked_over: Optional[int] = Field(None, description="when set, very common words were ranked among only the "
                                       "newest this many matches (every hit still matches); null: all ranked")


class SimilarHit(BaseModel):
    id: int
    path: str
    name: Optional[str] = None
    signal: Optional[str] = None
    kind: Optional[str] = None
    title: Optional[str] = None
    shape: list[int] = []
    pixel_size_nm: Optional[float] = None
    distance: float = Field(description="1 - cosine similarity of the content descriptors (0 = identical)")
    approximate: bool = Field(False, description="found through the approximate index")
    thumbnail: Optional[str] = None


class SimilarResult(BaseModel):
    target: int
    hits: list[SimilarHit]


class FieldInfo(BaseModel):
    name: str
    type: str
    unit: Optional[str] = None
    help: str = ""


class IngestRequest(BaseModel):
    paths: list[str] = Field(min_length=1, max_length=1000,
                             description="files or folders on the server, inside its --root folders")


class Detail(BaseModel):
    detail: str


_ERRORS = {c: {"model": Detail} for c in (400, 404, 413, 414)}
_WRITE_ERRORS = {c: {"model": Detail} for c in (400, 401, 403, 404, 413, 414)}


# -- helpers ---------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """A JSON-safe copy: numpy to Python, bytes dropped, NaN/inf to null, paths to str."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if not isinstance(v, (bytes, bytearray, memoryview))}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _thumb_url(dataset_id: int) -> str:
    return f"/api/datasets/{dataset_id}/thumbnail.png"


def _report_links(analysis_id: int, folder: str) -> list[dict]:
    """Name and URL of each report file (html, png, json, csv) directly inside an analysis folder."""
    return [{"name": n, "url": f"/api/analyses/{analysis_id}/files/{quote(n)}"} for n in _files.report_files(folder)]


def _with_thumbnails(cat, hits: list[dict]) -> list[dict]:
    """Add the thumbnail URL (or null) to each hit, with one query for all of them."""
    have = cat.thumbnail_ids([int(h["id"]) for h in hits])
    return [{**h, "thumbnail": _thumb_url(h["id"]) if h["id"] in have else None} for h in hits]


def _json(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(plain(value), status_code=status)


def _not_found(exc: InputError) -> HTTPException:
    return HTTPException(404, str(exc))


def _first_line(text: str) -> str:
    return " ".join(str(text).split())[:500]


# -- the app ---------------------------------------------------------------------------------------
def create_app(catalog=None, *, token: Optional[str] = None, max_request_bytes: int = 1_000_000,
               roots=()) -> FastAPI:
    """The catalog server as an ASGI application.

    Parameters
    ----------
    catalog : Catalog, str, path or None
        An open :class:`atomine.catalog.Catalog`, or what opens one (file path or database URL;
        ``None``: the per-user catalog). A catalog opened here is closed on shutdown.
    token : str, optional
        Enables ``POST /api/ingest`` and ``DELETE /api/datasets/{id}`` for requests carrying
        ``Authorization: Bearer <token>``. Without it the server is read-only.
    max_request_bytes : int
        Largest request body accepted (bytes); larger ones get 413.
    roots : iterable of paths
        Folders under which ``POST /api/ingest`` may read files; none: ingest is refused.

    Returns
    -------
    fastapi.FastAPI
    """
    from ..catalog import Catalog

    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise InputError("token must be a non-empty string (or None for a read-only server)")
    if isinstance(max_request_bytes, bool) or not isinstance(max_request_bytes, int) or max_request_bytes < 1:
        raise InputError(f"max_request_bytes must be a positive integer, got {max_request_bytes!r}")
    root_list = []
    for r in roots or ():
        p = Path(r).expanduser()
        if not p.is_dir():
            raise InputError(f"ingest root {str(r)!r} is not a folder; give existing folders with --root")
        root_list.append(p.resolve())
    owned = not isinstance(catalog, Catalog)
    cat = Catalog(catalog) if owned else catalog


    @asynccontextmanager
    async def lifespan(_app):
        yield
        if owned:  # a catalog opened here is closed here; one passed in belongs to the caller
            cat.close()

    app = FastAPI(title="atomine catalog", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Search the atomine catalog of microscopy datasets and analysis results: keyword and "
                              "field search, content similarity, thumbnails, analysis reports.")
    app.state.catalog, app.state.token, app.state.roots = cat, token, tuple(root_list)
    app.add_middleware(GuardMiddleware, max_request_bytes=max_request_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        err = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
        return _json({"detail": _first_line(f"{where or 'request'}: {err.get('msg', 'invalid value')}")}, 400)

    @app.exception_handler(AtomineError)
    async def _atomine_error(request: Request, exc: AtomineError):
        return _json({"detail": _first_line(str(exc) or type(exc).__name__)}, 400)

    # -- read endpoints ---------------------------------------------------------------------------
    @app.get("/api/search", summary="Search datasets", response_model=SearchResult, responses=_ERRORS)
    def search(q: str = Query("", description="free words, \"phrases\" and field filters such as signal:HAADF "
                                               "element:Mn beam_energy>=200 lattice_a:3.8..4.0A (see /api/fields)"),
               limit: int = Query(20, ge=1, le=MAX_LIMIT, description="most hits returned"),
               offset: int = Query(0, ge=0, description="hits skipped (paging)")):
        hits = cat.search(q, limit=limit, offset=offset)
        window = hits[0].get("ranked_over") if hits else None
        return _json({"query": q, "limit": limit, "offset": offset, "hits": _with_thumbnails(cat, hits),
                      "ranked_over": window})

    @app.get("/api/datasets/{dataset_id}", summary="One dataset with its metadata, descriptors and analyses",
             responses=_ERRORS)
    def dataset(dataset_id: int = PathParam(description="catalog id")):
        try:
            out = cat.get(dataset_id)
        except InputError as exc:
            raise _not_found(exc) from None
        out["thumbnail"] = _thumb_url(dataset_id) if out.get("has_thumbnail") else None
        out["similar"] = f"/api/similar/{dataset_id}"
        for a in out.get("analyses", []):
            a["reports"] = _report_links(a["id"], a["path"])
        return _json(out)

    @app.get("/api/datasets/{dataset_id}/thumbnail.png", summary="PNG thumbnail of a dataset",
             response_class=Response, responses={200: {"content": {"image/png": {}}}, 404: {"model": Detail}})
    def thumbnail(dataset_id: int = PathParam(description="catalog id")):
        png = cat.thumbnail(dataset_id)
        if png is None:
            raise HTTPException(404, f"dataset {dataset_id} has no thumbnail (or does not exist)")
        return Response(bytes(png), media_type="image/png")

    @app.get("/api/similar/{dataset_id}", summary="Datasets most like this one (content descriptors)",
             response_model=SimilarResult, responses=_ERRORS)
    def similar(dataset_id: int = PathParam(description="catalog id"),
                k: int = Query(10, ge=1, le=MAX_K, description="number of neighbours")):
        try:
            hits = cat.similar(dataset_id, k=k)
        except InputError as exc:
            raise _not_found(exc) from None
        hits = [{**h, "approximate": bool(h.get("approximate", False))} for h in hits]
        return _json({"target": dataset_id, "hits": _with_thumbnails(cat, hits)})

    @app.get("/api/analyses/{analysis_id}", summary="One analysis (atomine result folder) and its inputs",
             responses=_ERRORS)
    def analysis(analysis_id: int = PathParam(description="analysis id")):
        try:
            out = cat.analysis(analysis_id)
        except InputError as exc:
            raise _not_found(exc) from None
        out["reports"] = _report_links(analysis_id, out["path"])
        return _json(out)

    @app.get("/api/analyses/{analysis_id}/files/{name}", summary="A file directly inside an analysis folder",
             response_class=FileResponse, responses={404: {"model": Detail}})
    def analysis_file(analysis_id: int = PathParam(description="analysis id"),
                      name: str = PathParam(description="file name inside the analysis folder")):
        try:
            folder = cat.analysis(analysis_id)["path"]
        except InputError as exc:
            raise _not_found(exc) from None
        path = _files.safe_file(folder, name)
        return FileResponse(path, media_type=_files.media_type(path), headers={"Content-Security-Policy": REPORT_CSP})

    @app.get("/api/fields", summary="Search fields, their types and units", response_model=list[FieldInfo])
    def fields():
        from ..catalog.query import FIELDS

        return _json([{"name": f.name, "type": f.type, "unit": f.unit, "help": f.help} for f in FIELDS.values()])

    @app.get("/api/stats", summary="Counts per signal and kind, analyses, failures, schema version")
    def stats():
        return _json(cat.stats())

    # -- write endpoints (token only) ---------------------------------------------------------------
    @app.post("/api/ingest", summary="Add files or folders under the server's --root folders (token required)",
              dependencies=[Depends(require_token)], responses=_WRITE_ERRORS)
    def ingest(body: IngestRequest):
        return _json(ingest_paths(cat, body.paths, app.state.roots))

    @app.delete("/api/datasets/{dataset_id}", summary="Remove a dataset from the catalog (token required)",
                dependencies=[Depends(require_token)], responses=_WRITE_ERRORS)
    def delete(dataset_id: int = PathParam(description="catalog id")):
        try:
            cat.remove(dataset_id)
        except InputError as exc:
            raise _not_found(exc) from None
        return _json({"deleted": dataset_id})

    # -- the web page ------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index():
        if not (STATIC / "index.html").is_file():
            raise HTTPException(404, "the web page is not installed; the JSON API is under /api/")
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/static/{name:path}", include_in_schema=False)
    def static(name: str):
        path = _files.safe_file(STATIC, name, nested=True)
        return FileResponse(path, media_type=_files.media_type(path))

    return app
