"""Operations endpoints: ``/metrics`` (Prometheus text format 0.0.4) and ``/healthz``.

``/healthz`` answers 503 when the latest checkpoint is older than ``stale_after`` seconds (the
log's sequencer has stopped signing: monitors and witnesses would see a frozen log) or cannot
be read, and 200 otherwise. Both are cheap: the checkpoint, one small table of counters and the
node table (one row per node).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from .logview import checkpoint_info
from .state import explorer

bp = Blueprint("ops", __name__)

_PROM_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def error_response(code: int, message: str) -> Any:
    """A JSON error for API clients, plain text for the static log, an HTML page otherwise."""
    path = request.path
    if path.startswith("/api/") or path in ("/healthz", "/metrics"):
        resp = jsonify({"error": {"status": code, "message": message}})
        resp.status_code = code
        return resp
    if path.startswith("/log/"):
        return Response(message + "\n", status=code, mimetype="text/plain")
    return render_template("error.html", code=code, message=message), code


def _label(value: str) -> str:
    """A Prometheus label value, escaped (text format: backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@bp.get("/metrics")
def metrics() -> Response:
    ex = explorer()
    cp = checkpoint_info(ex.log)
    lines = [
        "# HELP teelog_log_size Entries in the log (latest signed checkpoint).",
        "# TYPE teelog_log_size gauge",
        f"teelog_log_size {cp.size}",
        "# HELP teelog_index_size Entries indexed by this explorer.",
        "# TYPE teelog_index_size gauge",
        f"teelog_index_size {ex.store.indexed_size()}",
    ]
    age = cp.age()
    if age is not None:
        lines += [
            "# HELP teelog_checkpoint_age_seconds Seconds since the latest checkpoint was signed.",
            "# TYPE teelog_checkpoint_age_seconds gauge",
            f"teelog_checkpoint_age_seconds {age:.3f}",
        ]
    lines += [
        "# HELP teelog_entries Indexed entries by type and verdict status.",
        "# TYPE teelog_entries gauge",
    ]
    for row in ex.store.counts():
        lines.append(
            f'teelog_entries{{type="{_label(row["type"])}",status="{_label(row["status"] or "")}"}}'
            f" {row['count']}"
        )
    by_status: dict[str, int] = {}
    for node in ex.store.nodes():
        key = node["status"] or "none"
        by_status[key] = by_status.get(key, 0) + 1
    lines += [
        "# HELP teelog_nodes Nodes by the status of their latest attestation.",
        "# TYPE teelog_nodes gauge",
    ]
    lines += [f'teelog_nodes{{status="{_label(s)}"}} {n}' for s, n in sorted(by_status.items())]
    return Response(
        "\n".join(lines) + "\n", mimetype=_PROM_TYPE.split(";")[0], content_type=_PROM_TYPE
    )


@bp.get("/healthz")
def healthz() -> Any:
    ex = explorer()
    limit = ex.config.stale_after
    try:
        cp = checkpoint_info(ex.log)
    except Exception as exc:  # a log we cannot read is unhealthy, and says why
        return jsonify({"status": "error", "message": f"cannot read the checkpoint: {exc}"}), 503
    age = cp.age()
    body = {
        "status": "ok",
        "size": cp.size,
        "checkpoint_age_seconds": None if age is None else round(age, 3),
        "stale_after_seconds": limit,
        "indexed": ex.store.indexed_size(),
        "time": int(time.time()),
    }
    if age is None or age > limit:
        body["status"] = "stale"
        body["message"] = (
            "checkpoint age unknown"
            if age is None
            else f"checkpoint is {age:.0f} s old, more than {limit:.0f} s"
        )
        return jsonify(body), 503
    return jsonify(body), 200
