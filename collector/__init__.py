"""The collector: polls nodes with fresh nonces, verifies what they claim, appends log entries,
detects measurement changes and alerts monitors (docs/collector.md)."""

from __future__ import annotations

from .config import CollectorConfig, ConfigError, NodeConfig, WebhookConfig, load_config
from .scheduler import Collector, RunSummary

__all__ = [
    "Collector",
    "CollectorConfig",
    "ConfigError",
    "NodeConfig",
    "RunSummary",
    "WebhookConfig",
    "load_config",
]
