"""gunicorn entry for the API tests: the production app plus the api/open311 blueprints, until
web/__init__.py registers them itself (then this equals web.wsgi:app)."""
from __future__ import annotations

from tests.api.helpers import register_exchange
from web.wsgi import app

register_exchange(app)
