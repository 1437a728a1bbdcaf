"""The dashboard at /dashboard, and Swagger UI's files for /docs, served from the package:
nothing is loaded from the internet.

The dashboard is one static page (api/static/dashboard/: HTML, CSS, ES modules, Chart.js
vendored with its licence in vendor/). The page holds no data and needs no key: its script
asks for an API key, keeps it in sessionStorage and sends it as `Authorization: Bearer` to
the JSON endpoints, which answer with what that key may see. Its Content-Security-Policy
lets it load and call nothing but this server.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, send_from_directory

STATIC = Path(__file__).parent / "static" / "dashboard"
SWAGGER_UI_URL = "/docs/assets/"
POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
          "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

blp = Blueprint("dashboard", __name__, static_folder=STATIC, static_url_path="/dashboard/assets")
swagger_assets = Blueprint("swagger_ui_assets", __name__, static_folder=swagger_ui_bundle.swagger_ui_path,
                           static_url_path=SWAGGER_UI_URL.rstrip("/"))


@blp.get("/dashboard")
def page():
    response = send_from_directory(STATIC, "index.html")
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cache-Control"] = "no-cache"
    return response
