"""teelog's own packages leave the interpreter's recursion limit alone (see tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_every_teelog_package_keeps_the_default_recursion_limit() -> None:
    code = (
        "import sys; before = sys.getrecursionlimit();"
        "import teelog.cli, teelog.demo, teelog.attestation, teelog.log, teelog.node.app,"
        " teelog.collector.scheduler, teelog.explorer.app;"
        "print(before, sys.getrecursionlimit())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.split()
    assert before == after
