"""teelog's append-only transparency log: RFC 9162 tree, C2SP notes, checkpoints, tiles.

The public API (docs/architecture.md)::

    from teelog.log import Log, BlobStore, Checkpoint, verify_inclusion, verify_consistency
"""

from .blobs import BlobError, BlobStore
from .checkpoint import Checkpoint, CheckpointError, open_checkpoint, parse_checkpoint
from .log import Log, LogConfig, LogError
from .merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from .note import NoteError, parse_vkey
from .objects import S3Settings
from .proof_bundle import TlogProofError, parse_tlog_proof, verify_tlog_proof
from .sequencer import LogStateError
from .tiles import MAX_ENTRY_SIZE, EntryTooLarge, TileError, TileReader

__all__ = [
    "MAX_ENTRY_SIZE",
    "BlobError",
    "BlobStore",
    "Checkpoint",
    "CheckpointError",
    "EntryTooLarge",
    "Log",
    "LogConfig",
    "LogError",
    "LogStateError",
    "NoteError",
    "ProofError",
    "S3Settings",
    "TileError",
    "TileReader",
    "TlogProofError",
    "leaf_hash",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_tlog_proof",
    "parse_vkey",
    "verify_consistency",
    "verify_inclusion",
    "verify_tlog_proof",
]
