"""Read queries over the explorer's index, shared by the pages and the JSON API.

Every query is an indexed lookup bounded by ``limit`` (B-tree range scans on the primary key or
on the composite indexes of ``explorer.schema``), so each costs O(log n + limit) whatever the
size of the log. Lists are newest first with cursor pagination: a page of ``limit`` rows plus
``next``, the cursor of the following page (the last row's index or id), or ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from teelog.attestation.receipt import VOUCHING_STATUSES

from . import schema
from .entry_view import normalise_value

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageError(ValueError):
    """A pagination argument was unusable; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a newest-first list and the cursor of the next page (None at the end)."""

    items: list[dict[str, Any]]
    next: str | None

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "next": self.next}


MAX_INT64 = (1 << 63) - 1


def parse_decimal(raw: str, name: str, what: str = "a non-negative integer") -> int:
    """A non-negative integer from a path or query string: ASCII digits only (``int()``
    would take "١٢", "1_000" or " 7"), at most 2^63 - 1 so that it fits the database's
    BIGINT; else :class:`PageError` naming ``name``."""
    if not (raw.isascii() and raw.isdigit()):
        raise PageError(f"{name} must be {what} in ASCII digits, got {raw[:40]!r}")
    if len(raw) > 19 or int(raw) > MAX_INT64:
        raise PageError(f"{name} must be below 2^63, got {raw[:40]}{'…' if len(raw) > 40 else ''}")
    return int(raw)


def parse_limit(raw: str | None, default: int = DEFAULT_LIMIT) -> int:
    """A page size from a query string: 1..MAX_LIMIT, else :class:`PageError`."""
    if raw is None or raw == "":
        return default
    value = parse_decimal(raw, "limit", "an integer")
    if not 1 <= value <= MAX_LIMIT:
        raise PageError(f"limit must be between 1 and {MAX_LIMIT}, got {value}")
    return value


def parse_cursor(raw: str | None) -> int | None:
    """A cursor from a query string (a non-negative integer), else :class:`PageError`."""
    if raw is None or raw == "":
        return None
    return parse_decimal(raw, "cursor", "a value of 'next' from a previous page")


def _entry_json(row: Any) -> dict[str, Any]:
    return {
        "index": int(row.idx),
        "type": row.type,
        "node": row.node,
        "time": row.time,
        "status": row.status,
        "summary": row.summary,
        "problems": row.problems.split("\n") if row.problems else [],
    }


def _node_json(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "status": row.status,
        "tcb_status": row.tcb_status,
        "last_seen": row.last_seen,
        "last_index": None if row.last_index is None else int(row.last_index),
        "first_index": int(row.first_index),
        "attestations": int(row.attestations),
        "receipts": int(row.receipts),
        "changes": int(row.changes),
    }


def _change_json(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "node": row.node,
        "index": int(row.idx),
        "previous_index": int(row.prev_idx),
        "time": row.time,
        "field": row.field,
        "old": row.old,
        "new": row.new,
    }


def _role_json(row: Any) -> dict[str, Any]:
    return {"role": row.role, "model": row.model, "status": row.status, "reason": row.reason}


def _page(rows: list[Any], limit: int, to_json: Any, key: str = "idx") -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = str(getattr(rows[-1], key)) if more and rows else None
    return Page([to_json(r) for r in rows], nxt)


class Store:
    """Read-only queries over the ``explorer_`` tables of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _all(self, stmt: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(stmt))

    def roles_at(self, indexes: list[int]) -> dict[int, list[dict[str, Any]]]:
        """The per-part statuses (``explorer_roles``) of these entries, in entry order."""
        if not indexes:
            return {}
        t = schema.roles
        out: dict[int, list[dict[str, Any]]] = {}
        rows = self._all(select(t).where(t.c.idx.in_(indexes)).order_by(t.c.idx, t.c.pos))
        for row in rows:
            out.setdefault(int(row.idx), []).append(_role_json(row))
        return out

    def _with_roles(self, items: list[dict[str, Any]], key: str = "index") -> list[dict[str, Any]]:
        """Each item with ``roles``: its entry's per-part statuses (empty for an entry of a
        type without parts, or one indexed before the explorer kept them)."""
        roles = self.roles_at([i[key] for i in items if i.get(key) is not None])
        for item in items:
            item["roles"] = roles.get(item[key], []) if item.get(key) is not None else []
        return items

    def signer_attestations(self, address: str) -> dict[str, tuple[int, str | None] | None]:
        """What the log's attestations say about a signing key: the newest attestation naming
        it (``named``) and the newest naming it with a vouching status (``vouched``), each as
        ``(entry index, that attestation's status)`` or ``None``."""
        t = schema.roles
        base = select(t.c.idx, t.c.status).where(
            t.c.signing_address == normalise_value(address)
        ).order_by(t.c.idx.desc()).limit(1)
        named = self._all(base)
        vouched = self._all(base.where(t.c.status.in_(sorted(VOUCHING_STATUSES))))
        return {
            "named": (int(named[0].idx), named[0].status) if named else None,
            "vouched": (int(vouched[0].idx), vouched[0].status) if vouched else None,
        }

    # entries

    def indexed_size(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(schema.state.c.value).where(schema.state.c.name == "cursor")
            ).scalar()
        return int(value or 0)

    def entry(self, index: int) -> dict[str, Any] | None:
        rows = self._all(select(schema.entries).where(schema.entries.c.idx == index))
        return self._with_roles([_entry_json(rows[0])])[0] if rows else None

    def entries(
        self, *, cursor: int | None = None, limit: int = DEFAULT_LIMIT, etype: str | None = None
    ) -> Page:
        return self._entries_page(select(schema.entries), etype, cursor, limit)

    def _entries_page(self, stmt: Any, etype: str | None, cursor: int | None, limit: int) -> Page:
        """One page of entry rows, newest first, of ``stmt`` narrowed to ``etype`` and to
        indexes below ``cursor``."""
        t = schema.entries
        if etype:
            stmt = stmt.where(t.c.type == etype)
        if cursor is not None:
            stmt = stmt.where(t.c.idx < cursor)
        stmt = stmt.order_by(t.c.idx.desc()).limit(limit + 1)
        page = _page(self._all(stmt), limit, _entry_json)
        self._with_roles(page.items)
        return page

    def counts(self) -> list[dict[str, Any]]:
        rows = self._all(
            select(schema.counts).order_by(schema.counts.c.type, schema.counts.c.status)
        )
        return [{"type": r.type, "status": r.status or None, "count": int(r.n)} for r in rows]

    # nodes

    def nodes(self) -> list[dict[str, Any]]:
        rows = self._all(select(schema.nodes).order_by(schema.nodes.c.name))
        return self._with_roles([_node_json(r) for r in rows], key="last_index")

    def node(self, name: str) -> dict[str, Any] | None:
        rows = self._all(select(schema.nodes).where(schema.nodes.c.name == name))
        return self._with_roles([_node_json(rows[0])], key="last_index")[0] if rows else None

    def node_entries(
        self,
        name: str,
        *,
        etype: str | None = "attestation",
        cursor: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page:
        stmt = select(schema.entries).where(schema.entries.c.node == name)
        return self._entries_page(stmt, etype, cursor, limit)

    # changes

    def changes(
        self, *, node: str | None = None, cursor: int | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page:
        t = schema.changes
        stmt = select(t)
        if node is not None:
            stmt = stmt.where(t.c.node == node)
        if cursor is not None:
            stmt = stmt.where(t.c.id < cursor)
        stmt = stmt.order_by(t.c.id.desc()).limit(limit + 1)
        return _page(self._all(stmt), limit, _change_json, key="id")

    def changes_at(self, indexes: list[int]) -> dict[int, list[dict[str, Any]]]:
        """The changes recorded at each of these entry indexes (for timelines)."""
        if not indexes:
            return {}
        t = schema.changes
        out: dict[int, list[dict[str, Any]]] = {}
        for row in self._all(select(t).where(t.c.idx.in_(indexes)).order_by(t.c.id)):
            out.setdefault(int(row.idx), []).append(_change_json(row))
        return out

    # lookups

    def lookup(self, kind: str, value: str, *, etype: str | None = None) -> int | None:
        """The newest entry index with this lookup key (``kind`` of ``entry_view.KEY_KINDS``)."""
        k, e = schema.keys, schema.entries
        stmt = select(k.c.idx).where(k.c.value == normalise_value(value), k.c.kind == kind)
        if etype:
            stmt = stmt.join(e, e.c.idx == k.c.idx).where(e.c.type == etype)
        stmt = stmt.order_by(k.c.idx.desc()).limit(1)
        rows = self._all(stmt)
        return int(rows[0].idx) if rows else None

    def search(self, q: str, *, cursor: int | None = None, limit: int = DEFAULT_LIMIT) -> Page:
        """Entries matching ``q`` exactly as any lookup key, a node name, or an entry index.

        Each item is an entry (see :meth:`entry`) with ``matched``: the kinds that matched.
        """
        q = q.strip()
        if not q:
            return Page([], None)
        k, e = schema.keys, schema.entries
        value = normalise_value(q)
        matched: dict[int, set[str]] = {}
        key_stmt = select(k.c.idx, k.c.kind).where(k.c.value == value)
        node_stmt = select(e.c.idx).where(e.c.node == q)
        if cursor is not None:
            key_stmt = key_stmt.where(k.c.idx < cursor)
            node_stmt = node_stmt.where(e.c.idx < cursor)
        # Each source is bounded by limit + 1: the merged page is the newest limit of them.
        for row in self._all(key_stmt.order_by(k.c.idx.desc()).limit((limit + 1) * 4)):
            matched.setdefault(int(row.idx), set()).add(row.kind)
        for row in self._all(node_stmt.order_by(e.c.idx.desc()).limit(limit + 1)):
            matched.setdefault(int(row.idx), set()).add("node")
        if q.isdigit() and len(q) < 19 and (cursor is None or int(q) < cursor):
            matched.setdefault(int(q), set()).add("index")
        ordered = sorted(matched, reverse=True)
        page_idx = ordered[:limit]
        rows = (
            {int(r.idx): r for r in self._all(select(e).where(e.c.idx.in_(page_idx)))}
            if page_idx
            else {}
        )
        items = []
        for idx in page_idx:
            if idx not in rows:
                continue  # an entry index beyond the log
            item = _entry_json(rows[idx])
            item["matched"] = sorted(matched[idx])
            items.append(item)
        self._with_roles(items)
        nxt = str(page_idx[-1]) if len(ordered) > limit else None
        return Page(items, nxt)

    def node_names_matching(self, q: str) -> list[str]:
        """Node names equal to ``q`` (exact, for a search's "go to node" link)."""
        rows = self._all(select(schema.nodes.c.name).where(schema.nodes.c.name == q.strip()))
        return [r.name for r in rows]

    def receipts_by_key(self, kind: str, value: str) -> int | None:
        """The newest receipt entry with this key (signature, chat_id, address, response_hash)."""
        return self.lookup(kind, value, etype="receipt")
