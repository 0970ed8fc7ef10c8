"""Fixtures shared by the version and migration tests: a fake clock at START and a set of
dispute cases standing at known places on v1 (see tests/versions_helpers.py)."""
from __future__ import annotations

import pytest

from engine import clock
from tests.versions_helpers import START, Cases


@pytest.fixture
def fake():
    c = clock.install_fake(START)
    yield c
    clock.set_source(None)


@pytest.fixture
def world(fake, svc):
    return Cases(svc, fake)
