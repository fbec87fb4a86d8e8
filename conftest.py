"""Repository-wide pytest setup: the test helpers under tests/ import as top-level modules."""

import sys
from pathlib import Path

TESTS = Path(__file__).parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
