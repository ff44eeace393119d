"""``teelog monitor``: a separate program that follows a served log and alerts (docs/monitor.md).

It reads the log only through its public static files (C2SP tlog-tiles and the blob store),
audits them with the audit core that ``teelog log verify`` uses (``teelog.log.audit``), reads
entries through ``teelog.entries``, and never imports the collector.
"""
