"""teelog's append-only transparency log: RFC 9162 tree, C2SP notes, checkpoints, tiles."""
