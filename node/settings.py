"""Settings of one node process (what ``teelog node`` parses from its command line)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """How the proxy talks to its upstream and its clients.

    ``token``: the bearer token clients must present on the completion and signature routes
    (None: no authentication, for a development node). ``max_body_bytes``: largest request body
    accepted (413 beyond). Timeouts are in seconds: ``connect_timeout`` to open a connection to
    the upstream, ``read_timeout`` between two reads from it (a stream that stalls longer is
    cut), ``keepalive_expiry`` before an idle upstream connection is closed.
    """

    upstream: str
    # Secrets stay out of repr() (logs, tracebacks, debuggers show it).
    token: str | None = field(default=None, repr=False)
    upstream_token: str | None = field(default=None, repr=False)
    max_body_bytes: int = 4 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 600.0
    max_upstream_connections: int = 1024
    keepalive_expiry: float = 4.0
    signature_cache_size: int = 4096

    def __post_init__(self) -> None:
        if not self.upstream.startswith(("http://", "https://")):
            raise ValueError(f"upstream must be an http(s) URL, got {self.upstream!r}")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
