import sys
from pathlib import Path

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES

sys.path.insert(0, str(REPO / "py"))


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    return SHARED_CAPTURES


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
