"""The uvicorn configuration of ``atomine serve``, built apart from serving so that it can be inspected."""

from __future__ import annotations

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def build_server_config(catalog=None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                        token: str | None = None, roots=(), max_request_bytes: int = 1_000_000,
                        log_level: str = "warning"):
    """A ``uvicorn.Config`` serving :func:`create_app` for ``catalog``.

    Parameters
    ----------
    catalog : Catalog, str, path or None
        As for :func:`atomine.server.create_app` (opened here, so a bad path fails before serving).
    host : str
        Interface to listen on; the default accepts connections from this machine only.
    port : int
        TCP port (1-65535; 0 picks a free one).
    token, roots, max_request_bytes
        See :func:`atomine.server.create_app`.
    log_level : str
        uvicorn's log level.
    """
    import uvicorn

    from ..errors import InputError
    from .app import create_app

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError(f"port must be an integer from 0 to 65535, got {port!r}")
    if not isinstance(host, str) or not host.strip():
        raise InputError(f"host must be an interface address such as 127.0.0.1, got {host!r}")
    app = create_app(catalog, token=token, roots=roots, max_request_bytes=max_request_bytes)
    # no Server header, no proxy headers: the server trusts nothing a client says about itself
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, server_header=False,
                          proxy_headers=False, access_log=False)
