"""Shared data of the node tests (a uniquely named module: test directories have no
``__init__.py``, so a shared ``conftest`` name would collide across packages)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
TOKEN = "test-token-0123456789"


