"""Reports the node builds from each attestation source, checked with ``teelog.attestation``.

Sources run against faithful fakes (``fakes/``): a dstack guest agent on a Unix socket and a
configfs-tsm "kernel" on a temp dir, both answering with recorded real quotes whose report_data
is overwritten (as the dstack simulator does), and NVML returning recorded real GPU evidence.
The node must bind its key and the caller's nonce exactly as a real one would, and
``teelog.attestation`` must refuse every such report as genuine: the quote's signature no
longer covers the report_data, and the GPUs' recorded nonce is not the fresh one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from pathlib import Path

import httpx
import pytest
from fake_configfs_tsm import FakeTsmKernel
from fake_dstack_agent import FakeDstackAgent, simulator_v053, vllmproxy_sample
from fake_nvml import FakeNvml
from node_servers import DATA
from teelog.attestation import (
    ReportFormatError,
    load_collateral,
    parse_quote,
    verify_quote,
    verify_report,
)
from teelog.attestation.signing import EcdsaSigner
from teelog.node.dstack_agent import DstackAgent, DstackError
from teelog.node.gpu import GpuEvidenceError, NvmlGpuEvidenceProvider
from teelog.node.keys import SigningKeys
from teelog.node.quote import ConfigfsTsmQuoteProvider, DstackQuoteProvider, QuoteError

# Pinned verification times and collateral from tests/data/tdx/README.md.
DSTACK_SAMPLE_AT = 1757462400
DSTACK_SAMPLE_COLLATERAL = DATA / "tdx" / "dcapqvl_nearmpc_tdx_v4.collateral.json"
UPTODATE_QUOTE = DATA / "tdx" / "dcapqvl_tdx_v4_uptodate.quote.bin"
UPTODATE_COLLATERAL = DATA / "tdx" / "dcapqvl_tdx_v4_uptodate.collateral.json"
UPTODATE_AT = 1751624191


def _checks(result) -> dict[str, str]:
    return {c.name: c.status for v in result.attestations for c in v.checks}


@pytest.fixture
def dstack_socket(tmp_path_factory) -> Path:
    # AF_UNIX paths are limited to ~107 bytes: keep the socket in a short temp dir.
    return tmp_path_factory.mktemp("ds") / "dstack.sock"


@pytest.fixture
def agent(dstack_socket):
    with FakeDstackAgent(dstack_socket) as fake:
        yield fake


@pytest.fixture
def nvml():
    return FakeNvml()


@pytest.fixture
def dstack_node(start_node, demo_upstream, agent, nvml):
    return start_node(
        demo_upstream,
        quotes=DstackQuoteProvider(DstackAgent(str(agent.socket_path))),
        gpus=NvmlGpuEvidenceProvider(nvml),
    )


def _report(node, nonce: bytes, algo: str = "ecdsa") -> dict:
    r = httpx.get(f"{node.url}/v1/attestation/report",
                  params={"nonce": nonce.hex(), "signing_algo": algo})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("algo", ["ecdsa", "ed25519"])
def test_dstack_report_binds_signing_key_and_nonce_into_quote_and_gpu_evidence(
    dstack_node, agent, nvml, algo
):
    nonce = secrets.token_bytes(32)
    report = _report(dstack_node, nonce, algo)
    signer = dstack_node.keys.ecdsa if algo == "ecdsa" else dstack_node.keys.ed25519
    key_bytes = bytes.fromhex(signer.address.removeprefix("0x"))
    quote = parse_quote(bytes.fromhex(report["intel_quote"]))
    assert quote.report_data == key_bytes.ljust(32, b"\0") + nonce
    assert agent.calls[-1][0] in {"GetQuote", "Info"}
    assert report["request_nonce"] == nonce.hex()
    assert report["tee"] == "tdx" and report["quote_provider"] == "dstack"
    assert report["signing_public_key"] == signer.public_key

    _, event_log, info = vllmproxy_sample()
    assert report["event_log"] == json.loads(event_log)
    tcb = report["info"]["tcb_info"]
    assert isinstance(tcb, dict)  # parsed, as vllm-proxy publishes it
    assert hashlib.sha256(tcb["app_compose"].encode()).hexdigest() == info["compose_hash"]

    payload = json.loads(report["nvidia_payload"])
    assert payload["nonce"] == nonce.hex()
    assert payload["arch"] == "HOPPER"
    assert len(payload["evidence_list"]) == len(nvml.gpus) == 8
    assert nvml.nonces[-8:] == [nonce] * 8  # the same nonce went to every GPU

    assert report["all_attestations"] == [
        {k: v for k, v in report.items() if k != "all_attestations"}
    ]


def test_attestation_library_refuses_a_report_built_on_the_dstack_fake(dstack_node):
    nonce = secrets.token_bytes(32)
    report = _report(dstack_node, nonce)
    result = verify_report(
        report, nonce=nonce, at=DSTACK_SAMPLE_AT,
        collateral=load_collateral(DSTACK_SAMPLE_COLLATERAL.read_bytes()),
    )
    assert result.status == "failed"
    checks = _checks(result)
    assert checks["tdx.quote"] == "fail"  # report_data was rewritten: signature broken
    assert checks["binding.report_data"] == "pass"  # …but the node bound key ‖ nonce right
    assert checks["binding.nonce"] == "pass"
    assert "fail" in {s for n, s in checks.items() if n.startswith("gpu.")}

    # Control: the same recorded quote, untouched, does verify with that collateral.
    original, _, _ = vllmproxy_sample()
    control = verify_quote(original, at=DSTACK_SAMPLE_AT,
                           collateral=load_collateral(DSTACK_SAMPLE_COLLATERAL.read_bytes()))
    assert _checks(control)["tdx.quote"] == "pass"


def test_attestation_library_refuses_a_report_for_another_nonce(dstack_node):
    report = _report(dstack_node, secrets.token_bytes(32))
    result = verify_report(
        report, nonce=secrets.token_bytes(32), at=DSTACK_SAMPLE_AT,
        collateral=load_collateral(DSTACK_SAMPLE_COLLATERAL.read_bytes()),
    )
    assert result.status == "failed"
    assert _checks(result)["binding.nonce"] == "fail"


def test_node_without_tee_says_so_and_never_verifies(start_node, demo_upstream):
    node = start_node(demo_upstream)
    nonce = secrets.token_bytes(32)
    report = _report(node, nonce)
    assert report["tee"] == "none"
    assert report["intel_quote"] is None and report["nvidia_payload"] is None
    assert report["event_log"] is None
    # The library may refuse the document outright or return a verdict; never "verified".
    try:
        result = verify_report(report, nonce=nonce, at=DSTACK_SAMPLE_AT, collateral=None)
    except ReportFormatError as exc:
        assert "intel_quote" in str(exc)
    else:
        assert result.status in {"failed", "unverifiable"}


def test_dstack_agent_failure_gives_503_in_openai_shape(dstack_node, agent):
    agent.fail = "quote generation failed: TDX module busy"
    r = httpx.get(f"{dstack_node.url}/v1/attestation/report")
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["type"] == "attestation_unavailable"
    assert "TDX module busy" in error["message"]


def test_dstack_signing_keys_are_stable_per_app_and_path(agent):
    async def derive(prefix: str) -> SigningKeys:
        client = DstackAgent(str(agent.socket_path))
        try:
            return await SigningKeys.from_dstack(client, prefix)
        finally:
            await client.aclose()

    first, again, other = (asyncio.run(derive(p)) for p in ("model-a", "model-a", "model-b"))
    assert first.ecdsa.address == again.ecdsa.address
    assert first.ed25519.address == again.ed25519.address
    assert first.ecdsa.address != other.ecdsa.address
    expected = EcdsaSigner(agent.derived_key("model-a/ecdsa-signing-key")).address
    assert first.ecdsa.address == expected
    assert ("GetKey", {"path": "model-a/ed25519-signing-key", "purpose": "signing"}) in (
        agent.calls
    )


def test_unreachable_dstack_agent_is_a_clear_error(tmp_path):
    async def call() -> None:
        client = DstackAgent(str(tmp_path / "missing.sock"))
        try:
            await client.get_key("x")
        finally:
            await client.aclose()

    with pytest.raises(DstackError, match="unreachable"):
        asyncio.run(call())


# --- configfs-tsm ------------------------------------------------------------------------


@pytest.fixture
def tsm(tmp_path):
    with FakeTsmKernel(tmp_path / "tsm" / "report", UPTODATE_QUOTE.read_bytes()) as kernel:
        yield kernel


def test_configfs_quote_carries_the_report_data_written_to_inblob(tsm):
    provider = ConfigfsTsmQuoteProvider(tsm.root)
    data = secrets.token_bytes(64)
    quote = provider.quote_blocking(data)
    assert parse_quote(quote).report_data == data
    assert tsm.report_data == [data]
    assert len(tsm.entries) == 1


def test_configfs_retries_when_another_writer_bumps_generation(tsm):
    tsm.interfere = 1
    data = secrets.token_bytes(64)
    quote = ConfigfsTsmQuoteProvider(tsm.root).quote_blocking(data)
    assert parse_quote(quote).report_data == data
    assert len(tsm.entries) == 2  # the raced entry was abandoned, a fresh one succeeded


def test_configfs_gives_up_when_writers_keep_racing(tsm):
    tsm.interfere = 10
    with pytest.raises(QuoteError, match="another writer"):
        ConfigfsTsmQuoteProvider(tsm.root).quote_blocking(bytes(64))


def test_configfs_refuses_a_provider_other_than_tdx_guest(tmp_path):
    quote = UPTODATE_QUOTE.read_bytes()
    with FakeTsmKernel(tmp_path / "r", quote, provider="sev_guest") as kernel, pytest.raises(
        QuoteError, match="sev_guest"
    ):
        ConfigfsTsmQuoteProvider(kernel.root).quote_blocking(bytes(64))


def test_configfs_without_the_interface_is_a_clear_error(tmp_path):
    assert not ConfigfsTsmQuoteProvider.available(tmp_path / "absent")
    with pytest.raises(QuoteError, match="cannot create"):
        ConfigfsTsmQuoteProvider(tmp_path / "absent").quote_blocking(bytes(64))


def test_configfs_report_is_refused_by_the_attestation_library(start_node, demo_upstream, tsm):
    node = start_node(demo_upstream, quotes=ConfigfsTsmQuoteProvider(tsm.root))
    nonce = secrets.token_bytes(32)
    report = _report(node, nonce)
    assert report["quote_provider"] == "configfs-tsm" and report["tee"] == "tdx"
    assert report["event_log"] is None
    addr = bytes.fromhex(node.keys.ecdsa.address[2:])
    assert parse_quote(bytes.fromhex(report["intel_quote"])).report_data == (
        addr.ljust(32, b"\0") + nonce
    )
    collateral = load_collateral(UPTODATE_COLLATERAL.read_bytes())
    result = verify_report(report, nonce=nonce, at=UPTODATE_AT, collateral=collateral)
    assert result.status == "failed"
    assert _checks(result)["tdx.quote"] == "fail"
    control = verify_quote(UPTODATE_QUOTE.read_bytes(), at=UPTODATE_AT, collateral=collateral)
    assert _checks(control)["tdx.quote"] == "pass"


# --- NVML --------------------------------------------------------------------------------


def test_nvml_with_cc_mode_off_is_refused():
    with pytest.raises(GpuEvidenceError, match="confidential-computing mode is off"):
        NvmlGpuEvidenceProvider(FakeNvml(cc_enabled=False))


def test_nvml_gpu_without_cc_attestation_is_refused():
    nvml = FakeNvml(arch=FakeNvml.NVML_DEVICE_ARCH_AMPERE)
    with pytest.raises(GpuEvidenceError, match="architecture"):
        NvmlGpuEvidenceProvider(nvml).evidence_blocking(bytes(32))


def test_nvml_evidence_is_the_recorded_report_and_chain_per_gpu(nvml):
    evidence = NvmlGpuEvidenceProvider(nvml).evidence_blocking(b"\x07" * 32)
    assert [(e.report, e.certificate_chain) for e in evidence] == nvml.gpus
    assert nvml.nonces == [b"\x07" * 32] * 8


def test_gpu_failure_makes_the_report_unavailable(start_node, demo_upstream, nvml):
    nvml.fail_report = "boom"
    node = start_node(demo_upstream, gpus=NvmlGpuEvidenceProvider(nvml))
    r = httpx.get(f"{node.url}/v1/attestation/report")
    assert r.status_code == 503
    assert "GPU 0" in r.json()["error"]["message"]


def test_report_on_the_dstack_simulator_quote_is_refused(
    start_node, demo_upstream, tmp_path_factory
):
    # The dstack v0.5.3 simulator's canned quote and event log, served the way it serves them.
    quote, event_log = simulator_v053()
    sock = tmp_path_factory.mktemp("sim") / "dstack.sock"
    with FakeDstackAgent(sock, quote=quote, event_log=event_log) as sim:
        quotes = DstackQuoteProvider(DstackAgent(str(sim.socket_path)))
        node = start_node(demo_upstream, quotes=quotes)
        nonce = secrets.token_bytes(32)
        report = _report(node, nonce, "ed25519")
    key = bytes.fromhex(node.keys.ed25519.address)
    assert parse_quote(bytes.fromhex(report["intel_quote"])).report_data == key + nonce
    assert report["event_log"] == json.loads(event_log)
    result = verify_report(report, nonce=nonce, at=UPTODATE_AT,
                           collateral=load_collateral(UPTODATE_COLLATERAL.read_bytes()))
    assert result.status == "failed"
    assert _checks(result)["tdx.quote"] == "fail"
