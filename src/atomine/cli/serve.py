"""``atomine serve``: the catalog's REST API and web page on this machine (uvicorn).

Listens on 127.0.0.1 unless ``--host`` says otherwise (a warning line says when it does not);
read-only unless a token is given (``--token`` or ``$ATOMINE_TOKEN``); ``POST /api/ingest`` only
reads files under the ``--root`` folders.
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._output import guarded, print_info, print_warning


def run_server(config) -> None:
    """Serve until interrupted (a separate function: tests inspect the config instead of serving)."""
    import uvicorn

    uvicorn.Server(config).run()


@guarded
def serve(
    catalog: Annotated[Optional[str], typer.Option(
        "--catalog", help="Catalog file or database URL (sqlite:///..., postgresql://...); default: the per-user "
        "SQLite file, or $ATOMINE_CATALOG.")] = None,
    host: Annotated[str, typer.Option(
        "--host", help="Interface to listen on; 127.0.0.1 serves this machine only, 0.0.0.0 the network.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8765,
    token: Annotated[Optional[str], typer.Option(
        "--token", envvar="ATOMINE_TOKEN", show_envvar=True,
        help="Allow ingest and delete to requests sending 'Authorization: Bearer TOKEN'; without it the "
        "server is read-only.")] = None,
    root: Annotated[Optional[list[Path]], typer.Option(
        "--root", help="Folder whose files POST /api/ingest may add (repeatable; default: none, ingest refused).")]
    = None,
    max_request_bytes: Annotated[int, typer.Option(
        "--max-request-bytes", help="Largest request body accepted (bytes).")] = 1_000_000,
) -> None:
    """Serve the catalog: a JSON API under /api/ (OpenAPI schema at /openapi.json) and a web page at /."""
    from ..errors import InputError
    from ..server import build_server_config, is_loopback

    if token is not None and not token.strip():
        raise InputError("--token is empty; give a token or leave it out for a read-only server")
    config = build_server_config(catalog, host=host, port=port, token=token, roots=root or (),
                                 max_request_bytes=max_request_bytes)
    if not is_loopback(host):
        print_warning(f"listening on {host}: other machines can reach this catalog"
                      + ("" if token is None else " and, with the token, change it") + "; use --host 127.0.0.1 "
                      "to keep it on this machine")
    shown = f"[{host}]" if ":" in host else host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else shown
    print_info(f"serving {config.app.state.catalog.url} ({'read-write with token' if token else 'read-only'})")
    print_info(f"open http://{shown}:{port}/ in a browser (Ctrl-C stops)")
    run_server(config)
