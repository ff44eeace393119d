"""Intel DCAP collateral: loading, matching by FMSPC, fetching from a PCCS/PCS, caching, freshness.

Collateral (``QuoteCollateralV3``: TCB info, QE identity, their issuer chains and signatures,
the root CA CRL and the PCK CRL) is what a quote is verified against. It is signed by Intel and
valid only inside a window (Intel SGX/TDX PCS API v4: ``issueDate``/``nextUpdate`` of TCB info
and QE identity, ``thisUpdate``/``nextUpdate`` of the CRLs), so every use says *as of when*.

One set of collateral serves every quote of the same TEE type and FMSPC, provided the optional
``pck_certificate_chain`` that dcap-qvl 0.7 may attach is removed: when present it replaces the
quote's own PCK chain, and another machine's quote then fails with "Signature is invalid for
qe_report" (tests/data/tdx/README.md). :func:`load_collateral` always strips it.

The bytes we keep and digest are the canonical JSON (RFC 8785) of the nine standard fields,
byte fields as lowercase hex, so the same collateral always has the same SHA-256.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dcap_qvl
import rfc8785
from cryptography import x509

from .errors import CollateralError
from .quote import Quote
from .times import parse_rfc3339, rfc3339

COLLATERAL_FIELDS = (
    "pck_crl_issuer_chain",
    "root_ca_crl",
    "pck_crl",
    "tcb_info_issuer_chain",
    "tcb_info",
    "tcb_info_signature",
    "qe_identity_issuer_chain",
    "qe_identity",
    "qe_identity_signature",
)
_BYTE_FIELDS = frozenset({"root_ca_crl", "pck_crl", "tcb_info_signature", "qe_identity_signature"})
_HEX = re.compile(r"\A[0-9a-fA-F]*\Z")


@dataclass(frozen=True, slots=True)
class Freshness:
    """Issue and next-update dates of every part of the collateral (all UTC)."""

    tcb_info_issue_date: datetime
    tcb_info_next_update: datetime
    qe_identity_issue_date: datetime
    qe_identity_next_update: datetime
    root_ca_crl_this_update: datetime
    root_ca_crl_next_update: datetime | None
    pck_crl_this_update: datetime
    pck_crl_next_update: datetime | None
    tcb_evaluation_data_number: int | None

    @property
    def not_before(self) -> datetime:
        """The latest issue date: before it, some part of the collateral did not exist yet."""
        return max(
            self.tcb_info_issue_date,
            self.qe_identity_issue_date,
            self.root_ca_crl_this_update,
            self.pck_crl_this_update,
        )

    @property
    def not_after(self) -> datetime:
        """The earliest next-update date: after it, some part of the collateral is stale."""
        ends = [self.tcb_info_next_update, self.qe_identity_next_update]
        ends += [d for d in (self.root_ca_crl_next_update, self.pck_crl_next_update) if d]
        return min(ends)

    def problem_at(self, at: datetime) -> str | None:
        """Why the collateral is not valid at ``at`` (None when it is)."""
        parts = [
            ("TCB info", self.tcb_info_issue_date, self.tcb_info_next_update),
            ("QE identity", self.qe_identity_issue_date, self.qe_identity_next_update),
            ("root CA CRL", self.root_ca_crl_this_update, self.root_ca_crl_next_update),
            ("PCK CRL", self.pck_crl_this_update, self.pck_crl_next_update),
        ]
        for name, start, end in parts:
            if at < start:
                return f"{name} not yet valid at {_iso(at)} (issued {_iso(start)})"
            if end is not None and at > end:
                return f"{name} expired at {_iso(end)} (verification time {_iso(at)})"
        return None

    def summary(self) -> str:
        tcb_eval = self.tcb_evaluation_data_number
        return (
            f"TCB info {_iso(self.tcb_info_issue_date)}..{_iso(self.tcb_info_next_update)}, "
            f"QE identity {_iso(self.qe_identity_issue_date)}.."
            f"{_iso(self.qe_identity_next_update)}, "
            f"root CA CRL {_iso(self.root_ca_crl_this_update)}.."
            f"{_iso(self.root_ca_crl_next_update)}, "
            f"PCK CRL {_iso(self.pck_crl_this_update)}..{_iso(self.pck_crl_next_update)}"
            + (f", tcbEvaluationDataNumber {tcb_eval}" if tcb_eval is not None else "")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tcb_info_issue_date": _iso(self.tcb_info_issue_date),
            "tcb_info_next_update": _iso(self.tcb_info_next_update),
            "qe_identity_issue_date": _iso(self.qe_identity_issue_date),
            "qe_identity_next_update": _iso(self.qe_identity_next_update),
            "root_ca_crl_this_update": _iso(self.root_ca_crl_this_update),
            "root_ca_crl_next_update": _iso(self.root_ca_crl_next_update),
            "pck_crl_this_update": _iso(self.pck_crl_this_update),
            "pck_crl_next_update": _iso(self.pck_crl_next_update),
            "tcb_evaluation_data_number": self.tcb_evaluation_data_number,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
        }


@dataclass(frozen=True, slots=True)
class CollateralDoc:
    """One set of collateral for one (TEE type, FMSPC), in canonical form."""

    tee: str  # "TDX" | "SGX"
    fmspc: str  # lowercase hex
    canonical: bytes
    sha256: str
    freshness: Freshness
    qvl: Any = field(compare=False, repr=False)  # dcap_qvl.QuoteCollateralV3, parsed once
    summary: str = field(default="", compare=False, repr=False)  # freshness, for check details

    def to_json(self) -> dict[str, Any]:
        return json.loads(self.canonical)


def load_collateral(data: bytes | str | dict[str, Any]) -> CollateralDoc:
    """Read ``QuoteCollateralV3`` JSON (file bytes, text or a parsed dict).

    Byte fields may be hex strings or JSON integer arrays (the near/mpc encoding). The
    machine-specific ``pck_certificate_chain`` is dropped. Raises :class:`CollateralError`.
    """
    if isinstance(data, dict):
        obj = data
    else:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CollateralError(f"collateral is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise CollateralError("collateral JSON must be an object (QuoteCollateralV3)")
    missing = [f for f in COLLATERAL_FIELDS if f not in obj]
    if missing:
        raise CollateralError(f"collateral lacks {', '.join(missing)}")
    norm: dict[str, str] = {}
    for name in COLLATERAL_FIELDS:
        value = obj[name]
        if name in _BYTE_FIELDS:
            norm[name] = _hex_field(name, value)
        elif isinstance(value, str):
            norm[name] = value
        else:
            raise CollateralError(f"collateral field {name} must be a string")
    canonical = rfc8785.dumps(norm)
    try:
        qvl = dcap_qvl.QuoteCollateralV3.from_json(canonical.decode())
    except ValueError as exc:
        raise CollateralError(f"dcap-qvl rejects the collateral: {exc}") from exc
    tcb_info = _json_object(norm["tcb_info"], "tcb_info")
    qe_identity = _json_object(norm["qe_identity"], "qe_identity")
    fmspc = tcb_info.get("fmspc")
    if not isinstance(fmspc, str) or not _HEX.match(fmspc) or len(fmspc) != 12:
        raise CollateralError(f"tcb_info.fmspc is not 6 bytes of hex: {fmspc!r}")
    tee = "TDX" if tcb_info.get("id") == "TDX" else "SGX"
    root_crl = _crl(norm["root_ca_crl"], "root_ca_crl")
    pck_crl = _crl(norm["pck_crl"], "pck_crl")
    tcb_eval = tcb_info.get("tcbEvaluationDataNumber")
    freshness = Freshness(
        tcb_info_issue_date=_date(tcb_info, "issueDate", "tcb_info"),
        tcb_info_next_update=_date(tcb_info, "nextUpdate", "tcb_info"),
        qe_identity_issue_date=_date(qe_identity, "issueDate", "qe_identity"),
        qe_identity_next_update=_date(qe_identity, "nextUpdate", "qe_identity"),
        root_ca_crl_this_update=root_crl.last_update_utc,
        root_ca_crl_next_update=root_crl.next_update_utc,
        pck_crl_this_update=pck_crl.last_update_utc,
        pck_crl_next_update=pck_crl.next_update_utc,
        tcb_evaluation_data_number=tcb_eval if isinstance(tcb_eval, int) else None,
    )
    return CollateralDoc(
        tee=tee,
        fmspc=fmspc.lower(),
        canonical=canonical,
        sha256=hashlib.sha256(canonical).hexdigest(),
        freshness=freshness,
        qvl=qvl,
        summary=f"{freshness.summary()}; collateral sha256 {hashlib.sha256(canonical).hexdigest()}",
    )


class Collateral:
    """Where collateral for a quote comes from: given documents, a cache, a PCCS/PCS.

    Documents are matched to a quote by TEE type and FMSPC; when several match, the one valid
    at the verification time is chosen (else the most recently issued). With ``pccs_url``, a
    quote with no usable local collateral has its collateral fetched (dcap-qvl's
    ``get_collateral``, then our own httpx client as a fallback) and, with ``cache_dir``,
    stored there by FMSPC for the next quote of that platform.
    """

    def __init__(
        self,
        docs: Iterable[CollateralDoc] = (),
        *,
        pccs_url: str | None = None,
        cache_dir: str | Path | None = None,
        timeout: float = 15.0,
    ) -> None:
        self._docs: dict[tuple[str, str], list[CollateralDoc]] = {}
        self.pccs_url = pccs_url
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.timeout = timeout
        for doc in docs:
            self.add(doc)
        if self.cache_dir is not None and self.cache_dir.is_dir():
            for path in sorted(self.cache_dir.glob("*.json")):
                try:
                    self.add(load_collateral(path.read_bytes()))
                except CollateralError:
                    continue  # a damaged cache entry is refetched, never trusted

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], **kwargs: Any) -> Collateral:
        """Collateral from QuoteCollateralV3 JSON files (raises CollateralError naming the file)."""
        docs = []
        for path in paths:
            try:
                docs.append(load_collateral(Path(path).read_bytes()))
            except CollateralError as exc:
                raise CollateralError(f"{path}: {exc}") from exc
            except OSError as exc:
                raise CollateralError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        return cls(docs, **kwargs)

    def add(self, doc: CollateralDoc) -> None:
        docs = self._docs.setdefault((doc.tee, doc.fmspc), [])
        if all(d.sha256 != doc.sha256 for d in docs):
            docs.append(doc)

    def documents(self) -> list[CollateralDoc]:
        return [d for docs in self._docs.values() for d in docs]

    def for_quote(self, quote: Quote, at: datetime) -> CollateralDoc | None:
        """The collateral to verify ``quote`` with at ``at``, or None (see :meth:`choose`)."""
        return self.choose(quote, at).doc

    def choose(self, quote: Quote, at: datetime) -> CollateralChoice:
        """The collateral valid for ``quote`` at ``at``, or None and the reason.

        Only a document valid at ``at`` (every part inside its issue..next-update window) is
        used: collateral archived for other times says nothing about this one. With a
        PCCS/PCS URL, a quote without such a document has its collateral fetched (and cached).
        A failed fetch is part of the reason, never an exception.
        """
        if quote.fmspc is None:
            return CollateralChoice(None, "the quote's platform (FMSPC) is unknown")
        tee = "TDX" if quote.is_tdx else "SGX"
        key = (tee, quote.fmspc)
        local = self._pick(self._docs.get(key, []), at)
        if local is not None:
            return CollateralChoice(local, None)
        if not self.pccs_url:
            return self._unused(key, at, "")
        try:
            fetched = self.fetch(quote)
        except CollateralError as exc:
            return self._unused(key, at, f"; {exc}")
        self.add(fetched)
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            target = self.cache_dir / f"{fetched.tee.lower()}-{fetched.fmspc}.json"
            # A name of its own per writer, so concurrent fetches never interleave bytes.
            tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(fetched.canonical)
            tmp.replace(target)
        chosen = self._pick(self._docs[key], at)
        if chosen is not None:
            return CollateralChoice(chosen, None)
        return self._unused(key, at, f" (including what {self.pccs_url} serves)")

    def _unused(self, key: tuple[str, str], at: datetime, more: str) -> CollateralChoice:
        docs = tuple(self._docs.get(key, []))
        return CollateralChoice(None, unused_reason(key[0], key[1], docs, at) + more, docs)

    def fetch(self, quote: Quote) -> CollateralDoc:
        """Fetch collateral for ``quote`` from :attr:`pccs_url` (network)."""
        if not self.pccs_url:
            raise CollateralError("no PCCS/PCS URL configured")
        errors = []
        try:
            qvl = _run_async(_dcap_qvl_fetch(self.pccs_url, quote.raw), self.timeout)
            return load_collateral(qvl.to_json())
        except Exception as exc:  # dcap-qvl raises ValueError/RuntimeError; keep the reason
            errors.append(f"dcap-qvl: {exc}")
        try:
            return load_collateral(fetch_collateral_httpx(self.pccs_url, quote, self.timeout))
        except Exception as exc:  # any transport or format problem: report both attempts
            errors.append(f"httpx: {exc}")
        raise CollateralError(
            f"could not fetch collateral for FMSPC {quote.fmspc} from {self.pccs_url}: "
            + "; ".join(errors)
        )

    @staticmethod
    def _pick(docs: list[CollateralDoc], at: datetime) -> CollateralDoc | None:
        valid = [d for d in docs if d.freshness.problem_at(at) is None]
        return max(valid, key=lambda d: d.freshness.not_before) if valid else None


@dataclass(frozen=True, slots=True)
class CollateralChoice:
    """The collateral chosen for a quote and time, or None and why none was used.

    ``cited`` are the documents at hand for the quote's FMSPC that were not used: the reason
    lists their windows, so they are kept with the verdict to reproduce it.
    """

    doc: CollateralDoc | None
    reason: str | None  # set exactly when doc is None
    cited: tuple[CollateralDoc, ...] = ()


def unused_reason(tee: str, fmspc: str, docs: Iterable[CollateralDoc], at: datetime) -> str:
    """Why none of ``docs`` (the collateral at hand for ``tee``/``fmspc``) verifies at ``at``.

    Names the case: none for this FMSPC; a CRL past its next update (or before its this
    update) while the signed TCB info and QE identity cover ``at``; or collateral archived
    only for [issue, next update] windows that do not cover ``at`` (Intel PCS API v4 dates).
    """
    docs = sorted(docs, key=lambda d: d.freshness.not_before)
    when = _iso(at)
    if not docs:
        return f"no collateral for {tee} FMSPC {fmspc}"
    for doc in docs:
        f = doc.freshness
        signed = max(f.tcb_info_issue_date, f.qe_identity_issue_date), min(
            f.tcb_info_next_update, f.qe_identity_next_update
        )
        if not signed[0] <= at <= signed[1]:
            continue
        for name, start, end in (
            ("root CA CRL", f.root_ca_crl_this_update, f.root_ca_crl_next_update),
            ("PCK CRL", f.pck_crl_this_update, f.pck_crl_next_update),
        ):
            if at < start or (end is not None and at > end):
                state = "expired" if at >= start else "not yet issued"
                return (
                    f"collateral for {tee} FMSPC {fmspc} covers {when} with its TCB info and QE "
                    f"identity, but its {name} (this update {_iso(start)}, next update "
                    f"{_iso(end)}) is {state} at that time, so revocations cannot be checked"
                )
    windows = ", ".join(
        f"[{_iso(d.freshness.not_before)}, {_iso(d.freshness.not_after)}]" for d in docs
    )
    plural = ("windows", "do") if len(docs) > 1 else ("window", "does")
    return (
        f"collateral for {tee} FMSPC {fmspc} is archived only for the [issue, next update] "
        f"{plural[0]} {windows}, which {plural[1]} not cover the verification time {when}"
    )


def fetch_collateral_httpx(base_url: str, quote: Quote, timeout: float) -> dict[str, Any]:
    """Fetch collateral with httpx from a PCCS or Intel PCS (Intel PCS API v4).

    ``GET {base}/sgx/certification/v4/pckcrl?ca=…&encoding=der`` (issuer chain in header
    ``SGX-PCK-CRL-Issuer-Chain``), ``{base}/{tdx|sgx}/certification/v4/tcb?fmspc=…``
    (``TCB-Info-Issuer-Chain``), ``…/qe/identity`` (``SGX-Enclave-Identity-Issuer-Chain``),
    and the root CA CRL from a PCCS's ``…/rootcacrl`` (hex) or Intel's distribution point.
    The signed ``tcbInfo``/``enclaveIdentity`` objects are kept as the exact bytes served,
    because the signatures cover those bytes.
    """
    import httpx  # only needed when fetching

    if quote.fmspc is None:
        raise CollateralError("quote has no PCK chain, so its FMSPC is unknown")
    tee = "tdx" if quote.is_tdx else "sgx"
    base = base_url.rstrip("/")
    for suffix in ("/sgx/certification/v4", "/tdx/certification/v4"):
        base = base.removesuffix(suffix)
    ca = quote.certification.ca or "platform"
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:

        def get(url: str) -> httpx.Response:
            response = client.get(url)
            if response.status_code != 200:
                raise CollateralError(f"GET {url}: HTTP {response.status_code}")
            return response

        def header(response: httpx.Response, *names: str) -> str:
            for name in names:
                if name in response.headers:
                    return urllib.parse.unquote(response.headers[name])
            raise CollateralError(f"{response.url}: missing header {names[0]}")

        pck = get(f"{base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der")
        tcb = get(f"{base}/{tee}/certification/v4/tcb?fmspc={quote.fmspc.upper()}")
        qe = get(f"{base}/{tee}/certification/v4/qe/identity?update=standard")
        qe_chain = header(qe, "SGX-Enclave-Identity-Issuer-Chain")
        root_crl: bytes
        if base.startswith("https://api.trustedservices.intel.com"):
            root_crl = get(
                "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
            ).content
        else:
            body = get(f"{base}/sgx/certification/v4/rootcacrl").content
            root_crl = bytes.fromhex(body.decode().strip()) if _HEX.match(body.decode()) else body
        tcb_info, tcb_sig = _signed_member(tcb.text, "tcbInfo")
        qe_identity, qe_sig = _signed_member(qe.text, "enclaveIdentity")
        return {
            "pck_crl_issuer_chain": header(pck, "SGX-PCK-CRL-Issuer-Chain"),
            "root_ca_crl": root_crl.hex(),
            "pck_crl": pck.content.hex(),
            "tcb_info_issuer_chain": header(
                tcb, "SGX-TCB-Info-Issuer-Chain", "TCB-Info-Issuer-Chain"
            ),
            "tcb_info": tcb_info,
            "tcb_info_signature": tcb_sig,
            "qe_identity_issuer_chain": qe_chain,
            "qe_identity": qe_identity,
            "qe_identity_signature": qe_sig,
        }


def _signed_member(text: str, member: str) -> tuple[str, str]:
    """The exact JSON text of ``member`` and the hex ``signature`` beside it."""
    decoder = json.JSONDecoder()
    match = re.search(r'"' + member + r'"\s*:\s*', text)
    if match is None:
        raise CollateralError(f"response lacks {member}")
    _, end = decoder.raw_decode(text, match.end())
    raw = text[match.end() : end]
    signature = json.loads(text).get("signature")
    if not isinstance(signature, str):
        raise CollateralError(f"response with {member} lacks its signature")
    return raw, signature


async def _dcap_qvl_fetch(url: str, raw: bytes) -> Any:
    # dcap-qvl's binding needs a running event loop at call time, not only when awaited.
    return await dcap_qvl.get_collateral(url, raw)


def _run_async(coro: Any, timeout: float) -> Any:
    """Run a coroutine to completion from synchronous code, inside or outside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(asyncio.wait_for(coro, timeout))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(coro, timeout)).result()


def _hex_field(name: str, value: Any) -> str:
    if isinstance(value, list):
        if not all(isinstance(b, int) and 0 <= b <= 255 for b in value):
            raise CollateralError(f"collateral field {name}: integer array with non-byte values")
        return bytes(value).hex()
    if isinstance(value, str) and _HEX.match(value) and len(value) % 2 == 0:
        return value.lower()
    raise CollateralError(f"collateral field {name} must be hex or a byte array")


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise CollateralError(f"collateral {name} is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise CollateralError(f"collateral {name} is not a JSON object")
    return obj


def _date(obj: dict[str, Any], key: str, where: str) -> datetime:
    value = obj.get(key)
    if not isinstance(value, str):
        raise CollateralError(f"collateral {where}.{key} missing")
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise CollateralError(f"collateral {where}.{key} is not a date: {value!r}") from exc


def _crl(hex_text: str, name: str) -> x509.CertificateRevocationList:
    try:
        return x509.load_der_x509_crl(bytes.fromhex(hex_text))
    except ValueError as exc:
        raise CollateralError(f"collateral {name} is not a DER CRL: {exc}") from exc


def _iso(when: datetime | None) -> str | None:
    return None if when is None else rfc3339(when)
