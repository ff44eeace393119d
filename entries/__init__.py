"""Log entry types (docs/entries.md)."""
