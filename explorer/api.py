"""The JSON API under ``/api/v1/`` (described by ``explorer.openapi``, served at
``/api/v1/openapi.json``).

Conventions: lists are ``{"items": [...], "next": cursor|null}``, newest first; pass ``cursor``
(the previous answer's ``next``) and ``limit`` (1..200, default 50) to page. Errors are
``{"error": {"status", "message"}}`` with the HTTP status. GET answers carry
``Access-Control-Allow-Origin: *`` (set by the app). Verdicts are exactly the JSON of
``teelog verify --json`` (``{status, attestations}``).
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, abort, jsonify, request
from werkzeug.wrappers import Response

from . import views
from .entry_view import parse_entry
from .openapi import openapi_document
from .store import Page, PageError, parse_cursor, parse_limit
from .witnessed import witnessed

bp = Blueprint("api", __name__, url_prefix="/api/v1")

RECEIPT_KEYS = {
    "signature": "signature",
    "chat_id": "chat_id",
    "address": "address",
    "response_hash": "response_hash",
}


def _paging() -> tuple[int | None, int]:
    try:
        return parse_cursor(request.args.get("cursor")), parse_limit(request.args.get("limit"))
    except PageError as exc:
        abort(400, str(exc))


def _page(page: Page) -> Response:
    return jsonify(page.to_json())


@bp.get("/")
def index() -> Response:
    """Where everything is."""
    return jsonify(
        {
            "openapi": "/api/v1/openapi.json",
            "status": "/api/v1/status",
            "nodes": "/api/v1/nodes",
            "entries": "/api/v1/entries",
            "search": "/api/v1/search?q=",
            "receipts": "/api/v1/receipts?signature=",
            "changes": "/api/v1/changes",
            "models": "/api/v1/models",
            "releases": "/api/v1/releases?model=",
            "checkpoint": "/api/v1/checkpoint",
            "consistency": "/api/v1/consistency?from=&to=",
            "log": "/log/checkpoint",
        }
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


@bp.get("/status")
def status() -> Response:
    ex = views.ex()
    return jsonify(
        {
            "checkpoint": views.checkpoint(ex).to_json(),
            "indexed": ex.store.indexed_size(),
            "entries": ex.store.counts(),
            "nodes": len(ex.store.nodes()),
        }
    )


@bp.get("/nodes")
def nodes() -> Response:
    return jsonify({"items": views.ex().store.nodes(), "next": None})


@bp.get("/nodes/<path:name>")
def node(name: str) -> Response:
    ex = views.ex()
    found = ex.store.node(name)
    if found is None:
        abort(404, f"no node named {name!r}")
    data = views.node_view(ex, name, limit=1)
    return jsonify({**found, "verdict": data["latest"] if data else None})


@bp.get("/nodes/<path:name>/history")
def node_history(name: str) -> Response:
    ex = views.ex()
    cursor, limit = _paging()
    if ex.store.node(name) is None:
        abort(404, f"no node named {name!r}")
    page = ex.store.node_entries(name, cursor=cursor, limit=limit)
    changes = ex.store.changes_at([e["index"] for e in page.items])
    items = [dict(e, changes=changes.get(e["index"], [])) for e in page.items]
    return jsonify({"items": items, "next": page.next})


@bp.get("/entries")
def entries() -> Response:
    cursor, limit = _paging()
    etype = request.args.get("type") or None
    if etype is not None and etype not in views.ENTRY_KINDS:
        abort(400, f"type must be one of {', '.join(views.ENTRY_KINDS)}")
    node_name = request.args.get("node") or None
    store = views.ex().store
    if node_name is not None:
        return _page(store.node_entries(node_name, etype=etype, cursor=cursor, limit=limit))
    return _page(store.entries(cursor=cursor, limit=limit, etype=etype))


@bp.get("/entries/<index:index>")
def entry(index: int) -> Response:
    data = views.entry_json(views.ex(), index)
    if data is None:
        abort(404, f"entry {index} is not in the log")
    return jsonify(data)


@bp.get("/entries/<index:index>/proof")
def entry_proof(index: int) -> Response:
    data = views.proof_json(views.ex(), index)
    if data is None:
        abort(404, f"entry {index} is not in the log")
    return jsonify(data)


@bp.get("/search")
def search() -> Response:
    q = request.args.get("q", "")
    if not q.strip():
        abort(400, "q is required: a signature, chat id, address, hash, measurement, node or index")
    if len(q) > 300:
        abort(400, "q is at most 300 characters")
    cursor, limit = _paging()
    ex = views.ex()
    page = ex.store.search(q, cursor=cursor, limit=limit)
    body: dict[str, Any] = page.to_json()
    body["nodes"] = ex.store.node_names_matching(q)
    return jsonify(body)


@bp.get("/receipts")
def receipts() -> Response:
    """The newest receipt with this signature, chat id, signing address or response hash,
    its exact bytes and a C2SP tlog-proof of its inclusion."""
    given = [(k, request.args[k]) for k in RECEIPT_KEYS if request.args.get(k)]
    if len(given) != 1:
        abort(400, "give exactly one of: " + ", ".join(RECEIPT_KEYS))
    key, value = given[0]
    ex = views.ex()
    index = ex.store.receipts_by_key(RECEIPT_KEYS[key], value)
    if index is None:
        abort(404, f"no receipt with {key} {value[:140]!r} in the log")
    t = views.tree(ex)
    if index >= t.cp.size:  # indexed but beyond the checkpoint: cannot happen for a sound log
        abort(404, f"receipt {index} is not under the latest checkpoint")
    proof = views.proof_json(ex, index, t)
    assert proof is not None  # index < t.cp.size
    entry_bytes = t.entry(index)
    doc = parse_entry(index, entry_bytes).doc
    return jsonify(
        {
            "index": index,
            "entry_b64": base64.b64encode(entry_bytes).decode("ascii"),
            "tlog_proof": proof["tlog_proof"],
            "checkpoint": proof["checkpoint"],
            "inclusion_proof": proof["inclusion_proof"],
            "tree_size": proof["tree_size"],
            "entry": doc,
            **views.receipt_vouching(t, doc or {}),
        }
    )


@bp.get("/models")
def models() -> Response:
    """Every model of a key_release or key_policy entry, with versions and counts."""
    return jsonify({"items": views.ex().store.models(), "next": None})


@bp.get("/releases")
def releases() -> Response:
    """Key decisions (released and denied), newest first, of ``model`` or of every model.
    ``insecure`` is true for a release to sample evidence, which is never verified."""
    cursor, limit = _paging()
    model = request.args.get("model") or None
    return _page(views.ex().store.releases(model=model, cursor=cursor, limit=limit))


@bp.get("/changes")
def changes() -> Response:
    cursor, limit = _paging()
    node_name = request.args.get("node") or None
    return _page(views.ex().store.changes(node=node_name, cursor=cursor, limit=limit))


@bp.get("/checkpoint")
def checkpoint() -> Response:
    ex = views.ex()
    return jsonify(
        {**views.checkpoint(ex).to_json(), "vkey": ex.log.vkey, "witnessed": witnessed(ex.log)}
    )


@bp.get("/checkpoints/<index:size>")
def checkpoint_at(size: int) -> Response:
    """The checkpoint the log signed at tree size ``size`` (it signs one per batch)."""
    note = views.signed_checkpoint(views.ex(), size)
    if note is None:
        abort(404, f"the log signed no checkpoint of size {size}")
    return jsonify({"size": size, "note": note})


@bp.get("/consistency")
def consistency() -> Response:
    ex = views.ex()
    size = views.checkpoint(ex).size
    first, second = request.args.get("from", ""), request.args.get("to", "")
    if not first:
        abort(400, "from is required: the tree size of the checkpoint you hold")
    try:
        return jsonify(views.consistency(ex, first, second, size))
    except views.InputError as exc:
        abort(400, str(exc))
