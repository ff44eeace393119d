"""The explorer's lookup index: tables prefixed ``explorer_`` in the log's database.

Everything here is derived from the log alone (``explorer.indexer``), so any replica can drop
these tables and rebuild them; nothing in them is authoritative. Each read the API and pages do
is an indexed lookup (B-tree, O(log n)); counts shown on every page are kept in
``explorer_counts`` rather than counted per request.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# One row per log entry.
entries = Table(
    "explorer_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(16), nullable=False),  # attestation | receipt | unknown | malformed
    Column("node", String(200)),
    Column("time", String(40)),
    Column("status", String(16)),
    Column("summary", String(400), nullable=False, default=""),
    Column("problems", Text),  # newline-separated; NULL when the entry read cleanly
    Index("explorer_entries_node", "node", "type", "idx"),  # a node's attestations, receipts
    Index("explorer_entries_node_idx", "node", "idx"),  # a node's entries of any type
    Index("explorer_entries_type", "type", "idx"),
)

# The status of each part of an entry (``entry_view.RoleStatus``): one row per attestation of
# an attestation entry, one for a receipt, so that lists show ``model verified · gateway
# unverifiable`` with the reason for anything not verified. ``signing_address`` (normalised)
# answers "which attestations named this key, with what status" in one index range scan.
roles = Table(
    "explorer_roles",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("pos", Integer, primary_key=True, autoincrement=False),
    Column("role", String(40), nullable=False),
    Column("model", String(200)),
    Column("status", String(16)),
    Column("reason", String(300)),
    Column("signing_address", String(200)),
    Index("explorer_roles_signer", "signing_address", "idx"),
)

# Lookup keys: value -> entry indexes (newest first), with the kind of value it is. The key
# order (value, idx, kind) makes "newest entries with this value" one index range scan even
# for a value shared by millions of entries (an OS image hash).
keys = Table(
    "explorer_keys",
    metadata,
    Column("value", String(200), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), primary_key=True),
)

# One row per node name: its latest attestation and counters.
nodes = Table(
    "explorer_nodes",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("first_index", BigInteger, nullable=False),
    Column("last_index", BigInteger),  # latest attestation entry
    Column("last_seen", String(40)),
    Column("status", String(16)),
    Column("tcb_status", String(40)),
    Column("attestations", Integer, nullable=False, default=0),
    Column("receipts", Integer, nullable=False, default=0),
    Column("changes", Integer, nullable=False, default=0),
)

# The comparable summary of each node's latest attestation, to detect changes entry by entry.
last_summary = Table(
    "explorer_last_summary",
    metadata,
    Column("node", String(200), primary_key=True),
    Column("idx", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),  # JSON of entries.changes.summary_of
)

# One change between a node's attestation and its previous one (the entries.changes rule).
changes = Table(
    "explorer_changes",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("node", String(200), nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("prev_idx", BigInteger, nullable=False),
    Column("time", String(40)),
    Column("field", String(400), nullable=False),
    Column("old", Text),
    Column("new", Text),
    Index("explorer_changes_node", "node", "id"),
    Index("explorer_changes_idx", "idx"),
)

# Entry counts by (type, status) for /metrics and the home page.
counts = Table(
    "explorer_counts",
    metadata,
    Column("type", String(16), primary_key=True),
    Column("status", String(16), primary_key=True),  # "" when the entry has none
    Column("n", BigInteger, nullable=False),
)

# Named integers: "cursor" = number of entries indexed (the next index to read).
state = Table(
    "explorer_state",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
