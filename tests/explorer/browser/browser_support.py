"""Helpers for the browser tests: an independent RFC 9162 tree and C2SP checkpoint, test pages
following the verify-data contract (docs/explorer-browser.md), and a static server.

Independent of ``teelog.log`` on purpose, so verify.js is tested on its own; the tree and
note code is checked against the RFC 6962 reference tree and the Go sumdb signed-note vector in
tests/data/tlog/ (test_browser_verify_js.py).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = Path(__file__).resolve().parents[3]
STATIC = REPO / "explorer" / "static"
TLOG_DATA = REPO / "tests" / "data" / "tlog"
CSP = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), leaf's sibling first."""
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return [*audit_path(index, leaves[:k]), mth(leaves[k:])]
    return [*audit_path(index - k, leaves[k:]), mth(leaves[:k])]


@dataclass
class NoteKey:
    """A C2SP signed-note Ed25519 key (type 0x01)."""

    name: str
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.name.encode() + b"\n\x01" + self.public).digest()[:4]

    @property
    def vkey(self) -> str:
        key = base64.b64encode(b"\x01" + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def sign(self, text: str) -> str:
        """The signed note: text, blank line, one signature line by this key."""
        sig = self.private.sign(text.encode())
        return f"{text}\n— {self.name} {base64.b64encode(self.key_id + sig).decode()}\n"


@dataclass
class SignedTree:
    """A whole tree of entries with a signed checkpoint, for building verify-data."""

    key: NoteKey
    entries: list[bytes]

    @property
    def leaves(self) -> list[bytes]:
        return [leaf_hash(e) for e in self.entries]

    def checkpoint(self) -> str:
        root = base64.b64encode(mth(self.leaves)).decode()
        return self.key.sign(f"{self.key.name}\n{len(self.entries)}\n{root}\n")

    def verify_data(self, index: int) -> dict:
        """The verify-data JSON of docs/explorer-browser.md for entry `index`."""
        return {
            "index": index,
            "entry_b64": base64.b64encode(self.entries[index]).decode(),
            "inclusion_proof": [
                base64.b64encode(h).decode() for h in audit_path(index, self.leaves)
            ],
            "checkpoint": self.checkpoint(),
            "vkey": self.key.vkey,
        }


def canonical(obj: dict) -> bytes:
    import rfc8785

    return rfc8785.dumps(obj)


def verify_page(data: dict | str) -> str:
    """A page carrying the verify-data contract, as the explorer's entry template does."""
    island = data if isinstance(data, str) else json.dumps(data)
    island = island.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>entry</title></head><body>"
        f"<h1>{html.escape('test entry')}</h1>"
        f"<script type='application/json' id='verify-data'>{island}</script>"
        "<div id='browser-verify' data-browser-verify='pending'>Verifying…</div>"
        "<script type='module' src='/static/js/verify.js'></script></body></html>"
    )


class StaticServer:
    """Serves explorer/static/ and registered pages on 127.0.0.1, with the explorer's CSP."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # keep test output quiet
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path in server.pages:
                    body, ctype = server.pages[path].encode(), "text/html; charset=utf-8"
                elif path.startswith("/static/"):
                    target = (STATIC / path.removeprefix("/static/")).resolve()
                    if not target.is_relative_to(STATIC) or not target.is_file():
                        self.send_error(404)
                        return
                    body = target.read_bytes()
                    ctype = "text/javascript" if target.suffix == ".js" else "text/plain"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Security-Policy", CSP)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def add(self, path: str, page_html: str) -> str:
        self.pages[path] = page_html
        return self.url + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def browser_verdict(page, url: str) -> str:
    """Load `url` and wait until verify.js has decided; return ok or fail."""
    page.goto(url)
    page.wait_for_function(
        "() => ['ok', 'fail'].includes("
        "document.getElementById('browser-verify')?.dataset.browserVerify)",
        timeout=15_000,
    )
    return page.get_attribute("#browser-verify", "data-browser-verify")
