"""The report builder: key ‖ nonce binding, and a bound on concurrent evidence collection."""

from __future__ import annotations

import asyncio

import pytest
from teelog.attestation.binding import report_data_for as report_data
from teelog.node.errors import NodeError
from teelog.node.gpu import NoGpuEvidenceProvider
from teelog.node.keys import SigningKeys
from teelog.node.quote import TdxEvidence
from teelog.node.report import Attestor


def test_report_data_is_key_padded_to_32_then_nonce():
    assert report_data(b"\xaa" * 20, b"\x01" * 32) == b"\xaa" * 20 + b"\0" * 12 + b"\x01" * 32
    assert report_data(b"\xbb" * 32, b"\x02" * 32) == b"\xbb" * 32 + b"\x02" * 32
    with pytest.raises(ValueError, match="at most 32"):
        report_data(b"\0" * 33, b"\0" * 32)
    with pytest.raises(ValueError, match="32 bytes"):
        report_data(b"\0" * 20, b"\0" * 31)


class SlowQuotes:
    """A quote source that takes its time and records how many quotes run at once."""

    name = "slow"
    tee = "tdx"

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.release = asyncio.Event()

    async def quote(self, data: bytes) -> TdxEvidence:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await self.release.wait()
        self.running -= 1
        return TdxEvidence(quote=b"q" + data, event_log=[])

    async def info(self) -> dict:
        return {}

    async def aclose(self) -> None:
        return None


def test_reports_beyond_the_backlog_are_refused_and_quotes_run_one_at_a_time():
    async def scenario():
        quotes = SlowQuotes()
        attestor = Attestor(SigningKeys.random(), quotes, NoGpuEvidenceProvider(),
                            concurrency=1, backlog=2)
        first = asyncio.ensure_future(attestor.report(b"\x01" * 32, "ecdsa"))
        second = asyncio.ensure_future(attestor.report(b"\x02" * 32, "ecdsa"))
        await asyncio.sleep(0.01)
        with pytest.raises(NodeError) as refused:
            await attestor.report(b"\x03" * 32, "ecdsa")
        quotes.release.set()
        done = await asyncio.gather(first, second)
        return quotes.peak, refused.value, done

    peak, refused, (a, b) = asyncio.run(scenario())
    assert peak == 1
    assert refused.status == 429 and refused.code == "attestation_busy"
    assert (a["request_nonce"], b["request_nonce"]) == ("01" * 32, "02" * 32)
