"""The catalog server: a REST API (FastAPI, OpenAPI schema at ``/openapi.json``) and the web page.

>>> from atomine.server import create_app
>>> app = create_app("lab.sqlite")                      # doctest: +SKIP

Run it with ``atomine serve``: loopback only unless ``--host`` says otherwise, read-only unless
started with ``--token``, ingest only under ``--root`` folders. Layer 6, beside the CLI: imports the catalog and
everything below; only the CLI imports it.
"""

from ._security import is_loopback
from ._serve import build_server_config
from .app import create_app

__all__ = ["build_server_config", "create_app", "is_loopback"]
