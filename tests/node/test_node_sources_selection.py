"""``auto`` picks the attestation sources the machine has, and logs what it picked."""

from __future__ import annotations

import logging
import socket

import pytest
from teelog.node.gpu import GpuEvidenceError, NoGpuEvidenceProvider, choose_gpu_evidence
from teelog.node.quote import (
    ConfigfsTsmQuoteProvider,
    DstackQuoteProvider,
    NoQuoteProvider,
    choose_quote_provider,
)


@pytest.fixture
def paths(tmp_path_factory):
    base = tmp_path_factory.mktemp("sel")
    return base / "dstack.sock", base / "tsm-report"


def test_auto_prefers_the_dstack_socket(paths, caplog):
    sock_path, tsm = paths
    tsm.mkdir()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        with caplog.at_level(logging.INFO, logger="teelog.node.quote"):
            provider = choose_quote_provider("auto", dstack_socket=str(sock_path),
                                             configfs_base=str(tsm))
    assert isinstance(provider, DstackQuoteProvider)
    assert "auto-selected: dstack" in caplog.text


def test_auto_falls_back_to_configfs_tsm(paths, caplog):
    sock_path, tsm = paths
    tsm.mkdir()
    sock_path.write_text("a regular file is not a socket")
    with caplog.at_level(logging.INFO, logger="teelog.node.quote"):
        provider = choose_quote_provider("auto", dstack_socket=str(sock_path),
                                         configfs_base=str(tsm))
    assert isinstance(provider, ConfigfsTsmQuoteProvider)
    assert "auto-selected: configfs" in caplog.text


def test_auto_without_tee_is_none_and_warns(paths, caplog):
    sock_path, tsm = paths
    with caplog.at_level(logging.INFO, logger="teelog.node.quote"):
        provider = choose_quote_provider("auto", dstack_socket=str(sock_path),
                                         configfs_base=str(tsm))
    assert isinstance(provider, NoQuoteProvider)
    assert "auto-selected: none" in caplog.text
    assert "has no TEE" in caplog.text


def test_unknown_quote_provider_is_rejected():
    with pytest.raises(ValueError, match="unknown quote provider 'sgx'"):
        choose_quote_provider("sgx")


def test_gpu_auto_on_a_machine_without_nvidia_driver_is_none(caplog):
    # This machine has no NVIDIA driver: NVML cannot initialise.
    with caplog.at_level(logging.INFO, logger="teelog.node.gpu"):
        provider = choose_gpu_evidence("auto")
    assert isinstance(provider, NoGpuEvidenceProvider)
    assert "GPU evidence auto-selected: none" in caplog.text


def test_gpu_nvml_requested_without_driver_fails_loudly():
    with pytest.raises(GpuEvidenceError, match="NVML unavailable"):
        choose_gpu_evidence("nvml")


def test_unknown_gpu_source_is_rejected():
    with pytest.raises(ValueError, match="unknown GPU evidence source"):
        choose_gpu_evidence("rocm")
