"""The HTML explorer: home, nodes, node, entries, entry, search, changes, log and verify pages.

Pages read the index (``explorer.store``) for lists and the log itself for entries, so an
entry page always shows the logged bytes and a proof to the latest checkpoint. Every value
from the log reaches the templates as data and is autoescaped there.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request
from werkzeug.wrappers import Response

from . import views
from .store import PageError, parse_cursor, parse_limit

bp = Blueprint("pages", __name__)


def _paging() -> tuple[int | None, int]:
    try:
        return parse_cursor(request.args.get("cursor")), parse_limit(request.args.get("limit"))
    except PageError as exc:
        abort(400, str(exc))


@bp.get("/")
def home() -> str:
    ex = views.ex()
    return render_template(
        "home.html",
        checkpoint=views.checkpoint(ex),
        nodes=ex.store.nodes(),
        entries=ex.store.entries(limit=15).items,
        changes=ex.store.changes(limit=10).items,
        counts=ex.store.counts(),
        indexed=ex.store.indexed_size(),
    )


@bp.get("/nodes")
def nodes() -> str:
    return render_template("nodes.html", nodes=views.ex().store.nodes())


@bp.get("/nodes/<path:name>")
def node(name: str) -> str:
    cursor, limit = _paging()
    data = views.node_view(views.ex(), name, cursor=cursor, limit=limit)
    if data is None:
        abort(404, f"no node named {name!r} in this log")
    return render_template("node.html", **data)


@bp.get("/entries")
def entries() -> str:
    cursor, limit = _paging()
    etype = request.args.get("type") or None
    if etype is not None and etype not in views.ENTRY_KINDS:
        abort(400, f"type must be one of {', '.join(views.ENTRY_KINDS)}")
    page = views.ex().store.entries(cursor=cursor, limit=limit, etype=etype)
    return render_template("entries.html", page=page, etype=etype, limit=limit)


@bp.get("/entries/<index:index>")
def entry(index: int) -> str:
    ex = views.ex()
    data = views.entry_view(ex, index, with_evidence=True)
    if data is None:
        abort(404, f"entry {index} is not in the log (its size is {views.checkpoint(ex).size})")
    return render_template(f"entry_{views.template_kind(data['view'].kind)}.html", **data)


@bp.get("/search")
def search() -> Any:
    ex = views.ex()
    q = request.args.get("q", "").strip()
    cursor, limit = _paging()
    if len(q) > 300:
        abort(400, "a search value is at most 300 characters")
    page = ex.store.search(q, cursor=cursor, limit=limit) if q else None
    node_names = ex.store.node_names_matching(q) if q else []
    return render_template("search.html", q=q, page=page, node_names=node_names, limit=limit)


@bp.get("/changes")
def changes() -> str:
    cursor, limit = _paging()
    node_name = request.args.get("node") or None
    page = views.ex().store.changes(node=node_name, cursor=cursor, limit=limit)
    return render_template("changes.html", page=page, node=node_name, limit=limit)


@bp.get("/log")
def log_page() -> str:
    ex = views.ex()
    cp = views.checkpoint(ex)
    consistency = None
    error = None
    first, second = request.args.get("from", ""), request.args.get("to", "")
    if first or second:
        try:
            consistency = views.consistency(ex, first, second, cp.size)
        except views.InputError as exc:
            error = str(exc)
    return render_template(
        "log.html",
        checkpoint=cp,
        vkey=ex.log.vkey,
        consistency=consistency,
        error=error,
        first=first,
        second=second,
    )


def _verify_page(**context: Any) -> str:
    """The verify page, which states its limits (``explorer.verifying.LIMITS``)."""
    from .verifying import LIMITS

    return render_template("verify.html", limits=LIMITS, **context)


@bp.route("/verify", methods=["GET", "POST"])
def verify() -> Any:
    ex = views.ex()
    if request.method == "GET":
        return _verify_page(result=None, error=None, text="")
    wait = ex.verify_limiter.acquire(views.client_ip(ex))
    if wait > 0:
        return (
            _verify_page(
                result=None,
                text="",
                error=f"Too many verifications from your address; try again in {wait:.0f} s.",
            ),
            429,
            {"Retry-After": str(max(1, int(wait + 0.999)))},
        )
    upload = request.files.get("file")
    data = upload.read(ex.config.verify_max_bytes + 1) if upload and upload.filename else b""
    pasted = not data
    if pasted:
        data = request.form.get("text", "").encode("utf-8")
    if len(data) > ex.config.verify_max_bytes:
        return _verify_page(
            result=None,
            text="",
            error=f"Input is larger than {ex.config.verify_max_bytes} bytes.",
        ), 413
    if not data.strip():
        return _verify_page(
            result=None, text="", error="Paste or upload something to verify."
        ), 400
    outcome = views.verify_input(data, request.form.get("kind", "auto"), request.form.get("at"))
    # Echo pasted text back for editing; an uploaded file (possibly binary) is not echoed.
    shown = data.decode("utf-8", "replace") if pasted and len(data) <= 200_000 else ""
    status = 200 if outcome.error is None else 400
    return _verify_page(result=outcome, text=shown, error=outcome.error), status


@bp.get("/entries/<index:index>/raw")
def entry_raw(index: int) -> Response:
    """The entry's exact bytes (canonical JSON), for ``teelog verify`` and other tools."""
    t = views.tree(views.ex())
    if index >= t.cp.size:
        abort(404, f"entry {index} is not in the log")
    body = t.entry(index)
    return Response(
        body,
        mimetype="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="entry-{index}.json"'},
    )
