"""The claims a release policy sees, taken from the evidence's verdict, never from the request.

A claim is present only when the check that establishes it passed (a claim that did not verify
is absent, so a condition on it is false; issue 11 "Policy"):

- ``tee``: always, the type the evidence was checked as (``tdx`` or ``sample``);
- ``tdx.mrtd``, ``tdx.rtmr0``…``tdx.rtmr3``, ``tdx.mr_config_id``, ``debug``: when
  ``tdx.quote`` passed (the signed TD report);
- ``tcb_status``: when ``tdx.tcb`` passed or warned (Intel's status was evaluated);
- ``compose_hash``, ``os_image_hash``, ``app_id``: when the event log replayed to the quote's
  RTMRs (``eventlog.rtmr`` passed) and carries the event;
- ``gpu.count``: the number of GPUs whose evidence, certificate chain and nonce checks passed
  (0 without GPU evidence); ``gpu.driver``, ``gpu.vbios``: the list of those GPUs' values,
  absent when there are none.

Hex values are lowercase (as :class:`teelog.attestation.Measurements` writes them).
"""

from __future__ import annotations

import re
from typing import Any

from teelog.attestation import Check

_GPU_CHECK = re.compile(r"\Agpu\.(\w+)\[(\d+)\]\Z")
_MUST_PASS = ("evidence", "chain", "nonce")


def _status(checks: list[Check], name: str) -> str | None:
    return next((c.status for c in checks if c.name == name), None)


def verified_gpus(checks: list[Check]) -> set[int]:
    """Indexes of the GPUs whose evidence, chain and nonce checks passed and none failed."""
    per_gpu: dict[int, dict[str, str]] = {}
    for check in checks:
        match = _GPU_CHECK.match(check.name)
        if match:
            per_gpu.setdefault(int(match[2]), {})[match[1]] = check.status
    return {
        i for i, seen in per_gpu.items()
        if all(seen.get(k) == "pass" for k in _MUST_PASS) and "fail" not in seen.values()
    }


def claims_of(
    tee: str,
    checks: list[Check],
    measurements: dict[str, Any] | None,
    debug: bool | None,
) -> dict[str, Any]:
    """The claims of one verified evidence (see the module docstring)."""
    claims: dict[str, Any] = {"tee": tee}
    m = measurements or {}
    if _status(checks, "tdx.quote") == "pass":
        for reg in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id"):
            if m.get(reg) is not None:
                claims[f"tdx.{reg}"] = m[reg]
        if debug is not None:
            claims["debug"] = debug
        if _status(checks, "tdx.tcb") in ("pass", "warn") and m.get("tcb_status"):
            claims["tcb_status"] = m["tcb_status"]
        if _status(checks, "eventlog.rtmr") == "pass":
            for name in ("compose_hash", "os_image_hash", "app_id"):
                if m.get(name) is not None:
                    claims[name] = m[name]
    good = verified_gpus(checks)
    gpus = [g for g in m.get("gpus") or [] if g.get("index") in good]
    claims["gpu.count"] = len(gpus)
    if gpus:
        claims["gpu.driver"] = [g.get("driver_version") for g in gpus]
        claims["gpu.vbios"] = [g.get("vbios_version") for g in gpus]
    return claims
