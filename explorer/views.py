"""What a page or API answer shows, assembled once for both (Datasette's rule: every page
has the same data as JSON).

An entry is always read from the log (``log.entry``), never from the index, and comes with an
inclusion proof to the latest checkpoint: what the explorer shows is what the log holds.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import request
from teelog.attestation.inputs import UntrustedJSONError, parse_json
from teelog.attestation.receipt import VOUCHING_STATUSES, signer_key
from teelog.attestation.verdict import STATUSES
from teelog.entries.attestation import attestations_of, measurements_of
from teelog.entries.receipt import receipt_index_field, receipt_signers
from teelog.log.proof_bundle import format_tlog_proof

from .entry_view import EntryView, parse_entry, status_reason
from .logview import (
    CheckpointInfo,
    TreeView,
    b64,
    checkpoint_info,
    consistency_proof_b64,
)
from .state import Explorer, explorer

ENTRY_KINDS = ("attestation", "receipt", "unknown", "malformed")
_HEX64 = frozenset("0123456789abcdef")


class InputError(ValueError):
    """A user-supplied value is unusable; the message says which and why."""


def ex() -> Explorer:
    return explorer()


def checkpoint(ex: Explorer) -> CheckpointInfo:
    return checkpoint_info(ex.log)


def tree(ex: Explorer) -> TreeView:
    """The latest signed tree, for reads that must agree with its checkpoint."""
    return TreeView(ex.log, checkpoint(ex))


def template_kind(kind: str) -> str:
    return kind if kind in ("attestation", "receipt") else "other"


def client_ip(ex: Explorer) -> str:
    """The client's address: the socket peer, or the ``X-Forwarded-For`` hop added by the
    ``trusted_proxies``-th proxy in front of us (never a value the client alone controls)."""
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    n = ex.config.trusted_proxies
    if n > 0 and len(hops) >= n:
        return hops[-n]
    return request.remote_addr or "unknown"


def _blob_hex(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64:
        return value
    return None


def blob_bytes(ex: Explorer, hexdigest: str | None) -> bytes | None:
    """A blob's bytes from the log's blob store, or None when absent or unreadable."""
    if hexdigest is None:
        return None
    try:
        return ex.log.blobs.get(hexdigest)
    except Exception:
        return None


def verdict_of(ex: Explorer, doc: dict[str, Any]) -> dict[str, Any]:
    """The entry's verdict, the JSON ``teelog verify --json`` prints: ``{status, attestations}``.

    An entry that had to be shortened to fit 65,535 bytes keeps its full attestation list in
    ``blobs.verdict``; it is used when present and well-formed.
    """
    attestations: list[dict[str, Any]] = attestations_of(doc)
    blobs = doc.get("blobs") if isinstance(doc.get("blobs"), dict) else {}
    full = blob_bytes(ex, _blob_hex(blobs.get("verdict")))
    if full is not None:
        try:
            parsed = parse_json(full)
            items = parsed.get("attestations") if isinstance(parsed, dict) else parsed
            if isinstance(items, list) and all(isinstance(a, dict) for a in items):
                attestations = items
        except UntrustedJSONError:
            pass
    return {"status": doc.get("status"), "attestations": attestations}


def verify_data(ex: Explorer, view: EntryView, t: TreeView) -> dict[str, Any]:
    """The JSON island the browser checks (docs/explorer-browser.md, fixed keys)."""
    data: dict[str, Any] = {
        "index": view.index,
        "entry_b64": base64.b64encode(view.raw).decode("ascii"),
        "inclusion_proof": t.inclusion_proof_b64(view.index),
        "checkpoint": t.cp.note,
        "vkey": ex.log.vkey,
    }
    if view.kind == "receipt" and view.doc is not None:
        sigs = view.doc.get("signatures")
        ecdsa = sigs.get("ecdsa") if isinstance(sigs, dict) else None
        if isinstance(ecdsa, dict):
            data["receipt"] = {
                "text": view.doc.get("text"),
                "signature": ecdsa.get("signature"),
                "signing_address": ecdsa.get("signing_address"),
            }
    return data


def entry_view(ex: Explorer, index: int, *, with_evidence: bool = False) -> dict[str, Any] | None:
    """Everything the entry page shows, or None when ``index`` is beyond the log."""
    t = tree(ex)
    cp = t.cp
    if index < 0 or index >= cp.size:
        return None
    view = parse_entry(index, t.entry(index))
    doc = view.doc or {}
    out: dict[str, Any] = {
        "view": view,
        "doc": doc,
        "checkpoint": cp,
        "verify_data": verify_data(ex, view, t),
        "changes": ex.store.changes_at([index]).get(index, []),
        "blobs": [],
    }
    blobs = doc.get("blobs") if isinstance(doc.get("blobs"), dict) else {}
    if view.kind == "attestation":
        out["verdict"] = verdict_of(ex, doc)
        report_hex = _blob_hex(blobs.get("report"))
        collateral = blobs.get("collateral") if isinstance(blobs.get("collateral"), list) else []
        collateral_hex = [h for h in (_blob_hex(c) for c in collateral) if h]
        out["blobs"] = [("report", report_hex)] if report_hex else []
        out["blobs"] += [("collateral", h) for h in collateral_hex]
        if _blob_hex(blobs.get("verdict")):
            out["blobs"].append(("verdict", blobs["verdict"]))
        if with_evidence:
            out.update(
                ex.evidence.get(index, lambda: _evidence(ex, doc, out, report_hex, collateral_hex))
            )
    elif view.kind == "receipt":
        out["attestation_index"] = receipt_index_field(doc, "attestation_index")
        out.update(receipt_vouching(t, doc))
    return out


def _naming(t: TreeView, doc: dict[str, Any], index: int | None) -> dict[str, Any] | None:
    """What log entry ``index`` says about the receipt's signers: ``None`` unless it is an
    attestation entry of the receipt's node in which an attestation names one of them; else
    ``{index, status, role, model, signing_address}`` of the best such attestation (one that
    vouches first)."""
    if index is None or index >= t.cp.size:
        return None
    linked = parse_entry(index, t.entry(index))
    if linked.kind != "attestation" or linked.doc is None or linked.node != doc.get("node"):
        return None
    keys = {signer_key(a) for a in receipt_signers(doc)}
    naming = [
        a for a in attestations_of(linked.doc)
        if isinstance(a.get("signing_address"), str) and signer_key(a["signing_address"]) in keys
    ]
    if not naming:
        return None
    best = max(naming, key=lambda a: a.get("status") in VOUCHING_STATUSES)
    status = best.get("status") if isinstance(best.get("status"), str) else None
    return {
        "index": index,
        "status": status,
        "vouches": status in VOUCHING_STATUSES,
        "role": best.get("role") if isinstance(best.get("role"), str) else None,
        "model": best.get("model") if isinstance(best.get("model"), str) else None,
        "signing_address": best["signing_address"],
        "time": linked.time,
    }


def receipt_vouching(t: TreeView, doc: dict[str, Any]) -> dict[str, Any]:
    """Who vouched for a receipt's signer, as far as the log proves it (docs/entries.md).

    ``vouched_by``: the attestation the entry's ``attestation_index`` names, only if the log
    holds there an attestation entry of the same node whose attestation naming the signer has
    a vouching status (``verified``, ``warning``); the receipt's word alone is not enough.
    ``named_by``: otherwise, the latest attestation that named the signer (``named_index``,
    or an older entry's ``attestation_index`` that pointed at one that did not verify), with
    its status. Both ``None`` when the log shows no attestation naming the signer.
    """
    claimed = _naming(t, doc, receipt_index_field(doc, "attestation_index"))
    if claimed is not None and claimed["vouches"]:
        return {"vouched_by": claimed, "named_by": None}
    named = _naming(t, doc, receipt_index_field(doc, "named_index")) or claimed
    return {"vouched_by": None, "named_by": named}


def _evidence(
    ex: Explorer,
    doc: dict[str, Any],
    out: dict[str, Any],
    report_hex: str | None,
    collateral_hex: list[str],
) -> tuple[dict[str, Any], bool]:
    """The parsed raw evidence of an attestation entry, and whether it may be cached (only
    when every blob was found: a blob that arrives later must then be shown)."""
    from .evidence import attestation_evidence, collateral_view

    report_bytes = blob_bytes(ex, report_hex)
    report: Any = None
    found: dict[str, Any] = {"report_error": None}
    complete = report_hex is None or report_bytes is not None
    if report_hex and report_bytes is None:
        found["report_error"] = "the report blob is not in this explorer's blob store"
    elif report_bytes is not None:
        try:
            report = parse_json(report_bytes)
        except UntrustedJSONError as exc:
            found["report_error"] = f"the report blob is not JSON teelog reads: {exc}"
    found["evidence"] = attestation_evidence(out["verdict"]["attestations"], report)
    verified_at = doc.get("verified_at") if isinstance(doc.get("verified_at"), str) else None
    found["collateral"] = []
    for h in collateral_hex:
        data = blob_bytes(ex, h)
        complete = complete and data is not None
        found["collateral"].append(collateral_view(h, data, verified_at))
    return found, complete


def entry_json(ex: Explorer, index: int) -> dict[str, Any] | None:
    """The API form of an entry (``GET /api/v1/entries/<index>``)."""
    data = entry_view(ex, index)
    if data is None:
        return None
    view: EntryView = data["view"]
    out: dict[str, Any] = {
        "index": index,
        "type": view.kind,
        "node": view.node,
        "time": view.time,
        "status": view.status,
        "roles": [r.to_json() for r in view.roles],
        "summary": view.summary,
        "problems": view.problems,
        "entry": view.doc,
        "entry_b64": data["verify_data"]["entry_b64"],
        "entry_sha256": view.sha256,
        "changes": data["changes"],
        "links": {
            "page": f"/entries/{index}",
            "proof": f"/api/v1/entries/{index}/proof",
            "blobs": {name: f"/log/blob/{h}" for name, h in data["blobs"] if name != "collateral"},
            "collateral": [f"/log/blob/{h}" for name, h in data["blobs"] if name == "collateral"],
        },
    }
    if view.kind == "attestation":
        out["verdict"] = data["verdict"]
    if view.kind == "receipt":
        out["attestation_index"] = data["attestation_index"]
        out["vouched_by"] = data["vouched_by"]
        out["named_by"] = data["named_by"]
    return out


def proof_json(ex: Explorer, index: int, t: TreeView | None = None) -> dict[str, Any] | None:
    """Inclusion proof of ``index`` to the latest checkpoint (or ``t``'s), in every encoding
    clients use; None when ``index`` is beyond that tree."""
    t = t or tree(ex)
    cp = t.cp
    if index < 0 or index >= cp.size:
        return None
    proof = t.inclusion_proof(index)
    return {
        "index": index,
        "tree_size": cp.size,
        "inclusion_proof": [b64(h) for h in proof],
        "checkpoint": cp.note,
        # The same proof and note as a c2sp.org/tlog-proof@v1 bundle (computed once).
        "tlog_proof": format_tlog_proof(index, proof, cp.note),
    }


def _size(text: str, name: str, limit: int) -> int:
    from .store import PageError, parse_decimal

    try:
        value = parse_decimal(text.strip(), name, "a tree size (a non-negative integer)")
    except PageError as exc:
        raise InputError(str(exc)) from None
    if value > limit:
        raise InputError(f"{name} = {value} is larger than the log ({limit})")
    return value


def consistency(ex: Explorer, first: str, second: str, size: int) -> dict[str, Any]:
    """RFC 9162 §2.1.4 consistency proof between two sizes of the log (second defaults to the
    latest checkpoint's size)."""
    size1 = _size(first, "from", size)
    size2 = _size(second, "to", size) if second.strip() else size
    if size1 > size2:
        raise InputError(f"from ({size1}) must not be larger than to ({size2})")
    return {
        "from": size1,
        "to": size2,
        "proof": consistency_proof_b64(ex.log, size1, size2) if 0 < size1 < size2 else [],
        "root_from": b64(ex.log.root(size1)) if size1 else None,
        "root_to": b64(ex.log.root(size2)) if size2 else None,
        "checkpoint_from": signed_checkpoint(ex, size1),
        "checkpoint": signed_checkpoint(ex, size2),
    }


def signed_checkpoint(ex: Explorer, size: int) -> str | None:
    """The checkpoint note the log signed at ``size``, or None when it signed none there
    (the log signs one per batch, so not every size has one)."""
    if size == checkpoint(ex).size:
        return checkpoint(ex).note
    return ex.log.store.checkpoint_note(size)


def node_view(
    ex: Explorer, name: str, *, cursor: int | None = None, limit: int = 50
) -> dict[str, Any] | None:
    """The node page: the node, its latest attestation's verdict, and its timeline."""
    node = ex.store.node(name)
    if node is None:
        return None
    page = ex.store.node_entries(name, cursor=cursor, limit=limit)
    changes = ex.store.changes_at([e["index"] for e in page.items])
    timeline = [dict(e, changes=changes.get(e["index"], [])) for e in page.items]
    latest: dict[str, Any] | None = None
    if node["last_index"] is not None:
        latest_raw = parse_entry(node["last_index"], ex.log.entry(node["last_index"]))
        if latest_raw.doc is not None:
            latest = verdict_of(ex, latest_raw.doc)
    return {
        "node": node,
        "latest": latest,
        "best_first": best_first(latest["attestations"]) if latest else [],
        "timeline": timeline,
        "next": page.next,
        "limit": limit,
        "receipts": ex.store.node_entries(name, etype="receipt", limit=10).items,
        "history": status_history(ex, name),
    }


def _rank(att: dict[str, Any]) -> int:
    status = att.get("status")
    return STATUSES.index(status) if status in STATUSES else len(STATUSES)


def best_first(attestations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A verdict's attestations, best-proven first (``verified`` … ``failed``, then those
    without a known status), each with ``facts``: what it proves when it vouches (TCB status,
    GPUs), and ``reason``: the one line why it is not verified otherwise."""
    out = []
    for att in sorted(attestations, key=_rank):  # stable: the log's order within a status
        status = att.get("status") if isinstance(att.get("status"), str) else None
        facts: list[str] = []
        if status in VOUCHING_STATUSES:
            m = measurements_of(att)
            if isinstance(m.get("tcb_status"), str):
                facts.append(f"genuine Intel TDX, TCB {m['tcb_status']}")
            gpus = [g for g in m.get("gpus") or [] if isinstance(g, dict)]
            if gpus:
                arch = sorted({str(g.get("arch")) for g in gpus if g.get("arch")})
                facts.append(f"evidence of {len(gpus)} NVIDIA {'/'.join(arch)} GPU(s) verified")
            if isinstance(att.get("signing_address"), str):
                facts.append(f"signing key {att['signing_address']} bound to the quote")
        out.append(dict(att, facts=facts, reason=status_reason(status, att.get("checks"))))
    return out


def status_history(ex: Explorer, name: str, points: int = 200) -> list[dict[str, Any]]:
    """The node's newest ``points`` attestations, oldest first, for the status picture."""
    items = ex.store.node_entries(name, limit=points).items
    return list(
        reversed([{"index": e["index"], "time": e["time"], "status": e["status"]} for e in items])
    )


def verify_input(data: bytes, kind: str, at_text: str | None) -> Any:
    """Verify a pasted report, quote or signature response (``explorer.verifying``); nothing
    is logged."""
    from .verifying import VerifyOutcome, parse_at, verify_bytes

    try:
        at = parse_at(at_text)
    except ValueError:
        return VerifyOutcome(
            kind=kind,
            at=str(at_text)[:40],
            error=f"time {str(at_text)[:40]!r} is not RFC 3339 or Unix seconds",
        )
    return verify_bytes(ex(), data, kind, at)
