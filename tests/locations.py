"""Where the test inputs live (importable by name from any test module)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_CAPTURES = REPO.parent / "shared" / "captures"
FIXTURES = REPO / "tests" / "fixtures"
