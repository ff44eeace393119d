"""Atom feeds (RFC 4287) of measurement changes (all nodes, and one per node) and of key
releases and denials (all models, or one with ``?model=``).

Built from the explorer's own index (``explorer_changes``), which is derived from the log with
the one definition of a change (``entries.changes.compare_summaries``), not from the
collector's tables: the explorer reads the log alone so that every replica serves the same feed,
consistent with its ``/changes`` page and node timelines.

One Atom entry per attestation that changed (all its changed fields), or per key decision
(``explorer_key_events``), newest first. Values
are untrusted and enter the XML only as escaped text (``xml.etree.ElementTree``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, abort, request, url_for
from teelog.attestation.times import parse_rfc3339, rfc3339

from .state import explorer

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_LIMIT = 200  # changes read per feed (grouped into at most as many Atom entries)

bp = Blueprint("feeds", __name__, url_prefix="/feeds")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _atom_time(value: str | None) -> str:
    if value:
        try:
            return rfc3339(parse_rfc3339(value))
        except ValueError:
            pass
    return "1970-01-01T00:00:00Z"  # an entry without a readable time sorts as the oldest


def _strip_controls(text: str) -> str:
    # XML 1.0 forbids most control characters even when escaped; a hostile value must not
    # make the whole feed unparseable.
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else "\ufffd" for ch in text)


def _feed_element(*, feed_id: str, title: str, updated: str, self_url: str) -> ET.Element:
    """An Atom feed element (RFC 4287 §4.1.1) with its required metadata, before its entries."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _sub(feed, "id", feed_id)
    _sub(feed, "title", _strip_controls(title))
    _sub(feed, "updated", updated)
    _sub(_sub(feed, "author"), "name", "teelog")
    _sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    _sub(feed, "generator", "teelog")
    return feed


def render_feed(
    changes: list[dict[str, Any]], *, title: str, feed_id: str, self_url: str, entry_url: Any
) -> bytes:
    """Atom XML of ``changes`` (``Store.changes`` items, newest first), grouped by entry."""
    groups: dict[int, list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(change["index"], []).append(change)
    first = next(iter(groups.values()), None)
    updated = (
        _atom_time(first[0]["time"]) if first else rfc3339(datetime.now(UTC))
    )
    feed = _feed_element(feed_id=feed_id, title=title, updated=updated, self_url=self_url)
    for index, group in groups.items():
        node = group[0]["node"]
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"{feed_id.split(':changes')[0]}:change:{index}")
        fields = ", ".join(c["field"] for c in group)
        _sub(entry, "title", _strip_controls(f"{node}: {fields}"))
        _sub(entry, "updated", _atom_time(group[0]["time"]))
        _sub(entry, "link", rel="alternate", href=entry_url(index))
        _sub(entry, "category", term=_strip_controls(node))
        lines = [
            f"Node {node} changed between log entries {group[0]['previous_index']} and {index}:"
        ]
        lines += [f"- {c['field']}: {c['old']} -> {c['new']}" for c in group]
        _sub(entry, "content", _strip_controls("\n".join(lines)), type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _feed(node: str | None) -> Response:
    ex = explorer()
    if node is not None and ex.store.node(node) is None:
        abort(404, f"no node named {node!r}")
    page = ex.store.changes(node=node, limit=FEED_LIMIT)
    origin = ex.log.checkpoint().origin
    base = f"tag:teelog,2026:{origin}"
    body = render_feed(
        page.items,
        title=f"teelog {origin}: measurement changes, " + (f"node {node}" if node else "all nodes"),
        feed_id=f"{base}:changes" + (f":{node}" if node else ""),
        self_url=request.url,
        entry_url=lambda i: url_for("pages.entry", index=i, _external=True),
    )
    return Response(body, mimetype="application/atom+xml")


@bp.get("/changes.atom")
def all_changes() -> Response:
    return _feed(None)


@bp.get("/nodes/<path:name>/changes.atom")
def node_changes(name: str) -> Response:
    return _feed(name)


def render_release_feed(
    releases: list[dict[str, Any]], *, title: str, feed_id: str, self_url: str, entry_url: Any
) -> bytes:
    """Atom XML (RFC 4287) of key decisions (``Store.releases`` items, newest first); a
    release to sample evidence says INSECURE in its title."""
    updated = _atom_time(releases[0]["time"]) if releases else rfc3339(datetime.now(UTC))
    feed = _feed_element(feed_id=feed_id, title=title, updated=updated, self_url=self_url)
    for r in releases:
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"{feed_id.split(':releases')[0]}:release:{r['index']}")
        insecure = " INSECURE (sample evidence, no TEE)" if r["insecure"] else ""
        name = f"{r['model'] or '?'} {r['version'] or '?'}"
        _sub(entry, "title", _strip_controls(f"key {r['kind']} for {name} to {r['tee'] or '?'}"
                                             f"{insecure}"))
        _sub(entry, "updated", _atom_time(r["time"]))
        _sub(entry, "link", rel="alternate", href=entry_url(r["index"]))
        if r["model"]:
            _sub(entry, "category", term=_strip_controls(r["model"]))
        lines = [
            f"Log entry {r['index']}: key {r['kind']}{insecure}.",
            f"Evidence status: {r['evidence_status'] or 'none'}",
            f"Manifest SHA-256: {r['manifest_sha256'] or '?'}",
            f"Policy SHA-256: {r['policy_sha256'] or '?'}",
            f"Tee-pubkey thumbprint: {r['tee_pubkey_thumbprint'] or '?'}",
            f"Quote SHA-256: {r['quote_sha256'] or '-'}",
        ]
        if r["reason"]:
            lines.append(f"Reason: {r['reason']}")
        _sub(entry, "content", _strip_controls("\n".join(lines)), type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


@bp.get("/releases.atom")
def releases() -> Response:
    """Key releases and denials, of ``?model=`` or of every model."""
    ex = explorer()
    model = request.args.get("model") or None
    page = ex.store.releases(model=model, limit=FEED_LIMIT)
    origin = ex.log.checkpoint().origin
    base = f"tag:teelog,2026:{origin}"
    body = render_release_feed(
        page.items,
        title=f"teelog {origin}: key releases, " + (f"model {model}" if model else "all models"),
        feed_id=f"{base}:releases" + (f":{model}" if model else ""),
        self_url=request.url,
        entry_url=lambda i: url_for("pages.entry", index=i, _external=True),
    )
    return Response(body, mimetype="application/atom+xml")
