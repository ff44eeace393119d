"""The log's entry format (docs/entries.md): entry types, the logged verdict, the change rule.

Written by the collector (and ``teelog import``) and the key broker, read by the explorer and
the monitor; none of those reads another's code to know what an entry is. Each entry type has
a module of its own (``attestation``, ``receipt``, ``key_policy``, ``key_release``), so a new
type is one new file.

The status order the entries use is :data:`teelog.attestation.verdict.STATUSES` (with
``worst_status`` and ``is_worse``): ``Result.status`` needs it too, and ``attestation/``
imports nothing of ours, so the one definition lives there.
"""
