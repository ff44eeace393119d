"""teelog: attestation explorer and transparency log for confidential LLM inference.

The subpackages mirror the repository's top level (see DESIGN.md):
``teelog.attestation`` and ``teelog.log`` import nothing else of ours;
``teelog.node``, ``teelog.collector`` and ``teelog.explorer`` use them.
"""

__version__ = "0.1.0"
