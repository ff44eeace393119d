"""Suite-wide test settings."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

# The interpreter's default. Importing eth-account (a test-only dependency, used as independent
# code to recover signatures) imports py_ecc, which raises the recursion limit to 100,000 for the
# whole process. With that limit, C code such as the json decoder overflows the C stack on a
# deeply nested hostile document instead of raising RecursionError, and the test process dies
# with SIGSEGV. teelog itself never imports py_ecc, so its processes keep this default; the tests
# must run under the same limit to test what the product does.
DEFAULT_RECURSION_LIMIT = 1000


@pytest.fixture(autouse=True)
def _product_recursion_limit() -> Iterator[None]:
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    yield
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
