"""Web front ends on the library: ``hcr app`` (Streamlit page) and ``hcr serve`` (HTTP API).

Both are thin: every image goes through :mod:`hcr.predictor` / :mod:`hcr.reader` and the
shared preprocessing; what they have in common (the model registry loaded once and shared
between sessions and requests, upload checks, display helpers) lives in
:mod:`hcr.web.service`. The Streamlit page is :mod:`hcr.web.app`, the FastAPI application
:mod:`hcr.web.api`. Importing this package does not import Streamlit or FastAPI (they come
with the ``web`` extra: ``pip install 'hcr-toolkit[web]'``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn, Sequence

#: The Streamlit script ``hcr app`` runs.
APP_PATH = Path(__file__).resolve().parent / "app.py"

#: Environment variables through which ``hcr app`` passes its options to the page.
ENV_APP_MODEL = "HCR_APP_MODEL"
ENV_APP_MAX_UPLOAD_MB = "HCR_APP_MAX_UPLOAD_MB"


def streamlit_command(host: str = "127.0.0.1", port: int = 8501, *, headless: bool = False, max_model_mb: int = 200,
                      extra: Sequence[str] = ()) -> list[str]:
    """The ``streamlit run`` command line for the hcr page (``python -m streamlit``, so the
    interpreter that runs hcr also runs the page). ``max_model_mb`` is Streamlit's own upload
    limit, which must admit model files; images have the page's smaller limit."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_PATH),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true" if headless else "false",
        "--server.maxUploadSize", str(max_model_mb),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
        "--global.developmentMode", "false",
        *extra,
    ]


def run_app(host: str = "127.0.0.1", port: int = 8501, *, model: str | None = None, max_upload_mb: float = 10.0,
            headless: bool = False) -> NoReturn:
    """Replace this process with ``streamlit run`` on the hcr page (so stopping it stops the
    server). ``model`` (a pretrained name or a model file) is selected when the page opens;
    images over ``max_upload_mb`` are refused with a message."""
    from ..errors import HcrError

    from importlib.util import find_spec

    for module in ("streamlit", "streamlit_drawable_canvas"):  # found, not imported: the canvas registers itself on import
        if find_spec(module) is None:
            raise HcrError(f"hcr app needs the web extra ({module} is missing): pip install 'hcr-toolkit[web]'")
    if model is not None:
        from ..pretrained import is_pretrained_name, resolve_model

        resolve_model(model)  # a missing file is reported here, not in the page
        if not is_pretrained_name(model):
            model = os.path.abspath(model)  # the page may run elsewhere
    if max_upload_mb <= 0:
        raise HcrError(f"--max-upload-mb must be positive, got {max_upload_mb}")
    env = dict(os.environ)
    env[ENV_APP_MAX_UPLOAD_MB] = str(max_upload_mb)
    if model is not None:
        env[ENV_APP_MODEL] = model
    cmd = streamlit_command(host, port, headless=headless)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)


__all__ = ["APP_PATH", "ENV_APP_MAX_UPLOAD_MB", "ENV_APP_MODEL", "run_app", "streamlit_command"]
