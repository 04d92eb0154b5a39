"""trackgate's web UI: server-rendered pages (Jinja2) over the API's own handlers.

Pages read and write through the same handler functions as the REST API (`calls.call`), so
validation and permission checks are one code path. JavaScript (static/app.js) only enhances:
charts, column picker state, keyboard navigation of tables.
"""

from __future__ import annotations

from aiohttp import web

from tracking_core.ui import compare, experiments, keys, models, run_page, runs_table
from tracking_core.ui.render import STATIC, TEMPLATES, environment


def add_routes(app: web.Application, prefix: str) -> None:
    app[TEMPLATES] = environment()
    experiments.add_routes(app, prefix)
    runs_table.add_routes(app, prefix)
    keys.add_routes(app, prefix)
    run_page.add_routes(app, prefix)
    compare.add_routes(app, prefix)
    models.add_routes(app, prefix)
    app.router.add_static(prefix + "/ui-static", STATIC, append_version=False)
