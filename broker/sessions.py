"""KBS sessions: the challenge of ``/auth`` and what ``/attest`` made of it.

Trustee keeps a session per ``kbs-session-id`` cookie for 5 minutes (kbs ``session.rs``,
``DEFAULT_TIMEOUT``; research/key-release.md §1.1). Differences, on purpose: the nonce is
single-use (consumed by the first ``/attest``, whatever its outcome), and a session that has
attested is never a reason to skip verification: every ``/attest`` verifies the evidence it
carries (Trustee returns the old token without looking, backend.rs:321).
"""

from __future__ import annotations

import base64
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from .protocol import NONCE_BYTES

COOKIE = "kbs-session-id"
DEFAULT_TTL = 300.0  # seconds
MAX_SESSIONS = 100_000  # beyond this the oldest sessions are dropped (memory bound)


@dataclass(slots=True)
class Session:
    id: str
    tee: str
    nonce: str  # standard base64 of 32 random bytes, as sent in the challenge
    expires_at: float
    nonce_used: bool = False
    token: str | None = None
    tee_key_thumbprint: str | None = None


class SessionStore:
    """Sessions in memory, by id; thread-safe (the app's handlers run in a thread pool)."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, tee: str) -> Session:
        now = self._clock()
        nonce = base64.b64encode(secrets.token_bytes(NONCE_BYTES)).decode("ascii")
        session = Session(uuid.uuid4().hex, tee, nonce, now + self.ttl)
        with self._lock:
            self._sweep(now)
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session.id] = session
        return session

    def lookup(self, session_id: str | None) -> tuple[Session | None, str | None]:
        """The live session, or ``None`` and why (``unknown``, ``expired``)."""
        if not session_id:
            return None, "no kbs-session-id cookie"
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None, "unknown session (no /auth, or already swept)"
            if session.expires_at <= now:
                del self._sessions[session_id]
                return None, "session expired (sessions last 5 minutes)"
            return session, None

    def consume_nonce(self, session: Session) -> bool:
        """Mark the session's nonce used; ``False`` when it already was (replay)."""
        with self._lock:
            if session.nonce_used:
                return False
            session.nonce_used = True
            return True

    def attested(self, session: Session, token: str, thumbprint: str) -> None:
        with self._lock:
            session.token = token
            session.tee_key_thumbprint = thumbprint

    def _sweep(self, now: float) -> None:
        expired = [k for k, s in self._sessions.items() if s.expires_at <= now]
        for key in expired:
            del self._sessions[key]
