"""teelog's append-only transparency log: RFC 9162 Merkle tree, C2SP notes, checkpoints and tiles."""
