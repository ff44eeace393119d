"""Fixtures of the model tests: a model directory made of real files from ``tests/data``."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model directory: real TDX and report files, a nested path, an empty file, and a
    weights file of three segments."""
    src = tmp_path / "src"
    (src / "tokenizer").mkdir(parents=True)
    shutil.copy(DATA / "tdx" / "dcapqvl_nearmpc_tdx_v4.quote.hex", src / "quote.hex")
    shutil.copy(
        DATA / "reports" / "vllmproxy_nras_response_8gpu_ppcie.json",
        src / "tokenizer" / "tokenizer.json",
    )
    (src / "tokenizer" / "empty.txt").write_bytes(b"")
    (src / "model.safetensors").write_bytes(random.Random(11).randbytes(2_500_000))
    return src
