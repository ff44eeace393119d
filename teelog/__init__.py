"""teelog: attestation explorer and transparency log for confidential LLM inference.

The subpackages mirror the repository's top level (docs/architecture.md, "Packages"):
``teelog.attestation`` and ``teelog.log`` import nothing else of ours; ``teelog.entries`` is
the log's entry format; ``teelog.node``, ``teelog.collector``, ``teelog.explorer`` and
``teelog.monitor`` use them, and the explorer and the monitor never import the collector.
"""

__version__ = "0.1.0"
