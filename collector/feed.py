"""Atom feeds of change events (RFC 4287), for all nodes or one; the explorer serves them.

One Atom entry per change event (one comparison of a node's attestation with its previous
one), newest first, listing every changed field with both values and both log indexes.
Values come from nodes and are untrusted: they go into the XML only as escaped text
(``xml.etree.ElementTree`` escapes), never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from .models import CollectorChange, CollectorChangeEvent

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_TAG_AUTHORITY = "teelog"  # tag: URIs (RFC 4151) need an authority; ids stay stable


def _time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _value(text: str | None) -> str:
    if text is None:
        return "null"
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def change_events(
    engine: Engine, *, node: str | None = None, limit: int = 50
) -> list[tuple[CollectorChangeEvent, list[CollectorChange]]]:
    """The newest ``limit`` change events (of ``node``, or all) with their field changes."""
    with Session(engine) as session:
        query = select(CollectorChangeEvent).order_by(CollectorChangeEvent.id.desc()).limit(limit)
        if node is not None:
            query = query.where(CollectorChangeEvent.node == node)
        events = list(session.exec(query))
        ids = [e.id for e in events]
        rows = (
            list(
                session.exec(
                    select(CollectorChange)
                    .where(CollectorChange.event_id.in_(ids))
                    .order_by(CollectorChange.id)
                )
            )
            if ids
            else []
        )
    by_event: dict[int, list[CollectorChange]] = {}
    for row in rows:
        by_event.setdefault(row.event_id, []).append(row)
    return [(e, by_event.get(e.id or 0, [])) for e in events]


def change_feed(
    engine: Engine,
    *,
    node: str | None = None,
    self_url: str = "",
    entry_url: Callable[[int], str] | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> bytes:
    """Atom feed XML (UTF-8 bytes) of change events, newest first.

    ``self_url`` is the feed's own address (``rel="self"``); ``entry_url(index)`` gives the
    address of a log entry, used to link each event to its new attestation.
    """
    ET.register_namespace("", ATOM_NS)
    events = change_events(engine, node=node, limit=limit)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    scope = f"node {node}" if node is not None else "all nodes"
    _sub(feed, "id", f"tag:{FEED_TAG_AUTHORITY},2026:changes" + (f":{node}" if node else ""))
    _sub(feed, "title", f"teelog: measurement changes, {scope}")
    updated = events[0][0].time if events else (now or datetime.now(UTC))
    _sub(feed, "updated", _time(updated))
    author = _sub(feed, "author")
    _sub(author, "name", "teelog collector")
    if self_url:
        _sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    _sub(feed, "generator", "teelog")
    for event, changes in events:
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"tag:{FEED_TAG_AUTHORITY},2026:change:{event.new_index}")
        fields = ", ".join(c.field for c in changes) or event.summary
        _sub(entry, "title", f"{event.node}: {fields}")
        _sub(entry, "updated", _time(event.time))
        if entry_url is not None:
            _sub(entry, "link", rel="alternate", href=entry_url(event.new_index))
        _sub(entry, "category", term=event.node)
        lines = [
            f"Node {event.node} changed between log entries {event.old_index} and "
            f"{event.new_index}:"
        ]
        lines += [f"- {c.field}: {_value(c.old)} -> {_value(c.new)}" for c in changes]
        _sub(entry, "content", "\n".join(lines), type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
