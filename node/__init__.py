"""The teelog inference node: a signing proxy in front of vLLM (or any OpenAI-compatible server).

It speaks the vllm-proxy API (``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``,
``/v1/signature/{chat_id}``, ``/v1/attestation/report``), signs every response it delivers whole
with both ECDSA (secp256k1, EIP-191) and Ed25519 over
``sha256hex(request bytes) + ":" + sha256hex(response bytes)``, keeps those receipts in a local
SQLite journal and publishes them on ``/v1/receipts`` for the collector.

Attestation evidence comes from a quote provider (``teelog.node.quote``: configfs-tsm, the dstack
guest agent, or none) and a GPU evidence provider (``teelog.node.gpu``: NVML, or none).
See ``docs/node.md``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NodeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``teelog --help`` does not import Starlette and httpx.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "NodeSettings":
        from .settings import NodeSettings

        return NodeSettings
    raise AttributeError(name)
