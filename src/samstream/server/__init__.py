"""The web app and HTTP API (``samstream serve``): schemas, sessions, the model worker, the page.

No model logic lives here; it calls the predictors. Needs the ``serve`` extra
(``pip install 'samstream[serve]'``: FastAPI, uvicorn).
"""

from .app import create_app, example_video
from .settings import DEFAULT_MODEL, ServerSettings

__all__ = ["create_app", "ServerSettings", "DEFAULT_MODEL", "example_video"]
