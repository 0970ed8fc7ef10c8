"""The data-exchange tests' `app`: the shared one, over a city whose boundaries are filled (cases
are routed by location), with /api/v1 and /open311/v2 registered."""
from __future__ import annotations

import pytest

from tests.api.helpers import fill_boundaries, register_exchange
from tests.api.http_helpers import gunicorn


@pytest.fixture
def app_svc(svc):
    fill_boundaries(svc)
    return svc


@pytest.fixture
def app(app):
    register_exchange(app)
    return app


@pytest.fixture
def server(svc, tmp_path):
    """gunicorn over the same city, for the tests that talk HTTP as a real client does."""
    fill_boundaries(svc)
    with gunicorn(svc.db.url_with_password, tmp_path) as srv:
        yield srv
