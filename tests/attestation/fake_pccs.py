"""A loopback PCCS serving recorded Intel collateral (Intel PCS API v4 paths and headers)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakePccs:
    """Serves one collateral document (QuoteCollateralV3 JSON) the way a PCCS does."""

    def __init__(self, collateral: dict) -> None:
        self.collateral = collateral
        self.requests: list[str] = []
        self.fail_all = False
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakePccs:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        pccs = self
        c = self.collateral

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                pccs.requests.append(self.path)
                path = urllib.parse.urlparse(self.path).path
                if pccs.fail_all:
                    return self._send(503, b"unavailable", {})
                quote = urllib.parse.quote
                if path.endswith("/sgx/certification/v4/pckcrl"):
                    return self._send(
                        200,
                        bytes.fromhex(c["pck_crl"]),
                        {"SGX-PCK-CRL-Issuer-Chain": quote(c["pck_crl_issuer_chain"])},
                    )
                if path.endswith("/certification/v4/tcb"):
                    body = f'{{"tcbInfo":{c["tcb_info"]},"signature":"{c["tcb_info_signature"]}"}}'
                    return self._send(
                        200,
                        body.encode(),
                        {"TCB-Info-Issuer-Chain": quote(c["tcb_info_issuer_chain"])},
                    )
                if path.endswith("/certification/v4/qe/identity"):
                    sig = c["qe_identity_signature"]
                    body = f'{{"enclaveIdentity":{c["qe_identity"]},"signature":"{sig}"}}'
                    return self._send(
                        200,
                        body.encode(),
                        {"SGX-Enclave-Identity-Issuer-Chain": quote(c["qe_identity_issuer_chain"])},
                    )
                if path.endswith("/sgx/certification/v4/rootcacrl"):
                    return self._send(200, c["root_ca_crl"].encode(), {})
                return self._send(404, b"not found", {})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def collateral_json(doc) -> dict:
    return json.loads(doc.canonical)
