import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "py"))

SHARED_CAPTURES = REPO.parent / "shared" / "captures"
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    return SHARED_CAPTURES


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
