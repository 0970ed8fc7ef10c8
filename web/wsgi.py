"""The WSGI entry for production: `gunicorn -c web/gunicorn_conf.py 'web.wsgi:app'`.

Each gunicorn worker imports this after the fork (no preload), so each has its own database
pool. No timer scheduler runs here: that is `gridflow scheduler`, a process of its own.
"""
from __future__ import annotations

from grid.config import Settings, install_test_clock

from . import create_app
from .logs import configure_logging

settings = Settings()
configure_logging(settings)
install_test_clock(settings)
app = create_app(settings)
