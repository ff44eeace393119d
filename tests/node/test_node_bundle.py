"""The deployable bundle: node/Dockerfile and node/docker-compose.yaml hang together."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from teelog.node import cli
from teelog.node.cli import cmd_model_fetch

from teelog.cli import build_parser

NODE = Path(__file__).resolve().parents[2] / "node"
REPO = NODE.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((NODE / "docker-compose.yaml").read_text())


def _parse_node_command(command: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="teelog")
    cli.register(parser.add_subparsers(dest="command"))
    assert command[0] == "teelog"
    return parser.parse_args(command[1:])


def test_signer_command_is_a_valid_teelog_node_invocation_for_a_dstack_cvm(compose):
    signer = compose["services"]["signer"]
    args = _parse_node_command(signer["command"])
    assert args.quote_provider == "dstack"
    assert args.gpu_evidence == "nvml"
    assert args.signing_key == "dstack"
    assert args.token_env == "TEELOG_NODE_TOKEN"
    vllm = compose["services"]["vllm"]
    port = vllm["command"][vllm["command"].index("--port") + 1]
    assert args.upstream == f"http://vllm:{port}"
    assert "/var/run/dstack.sock:/var/run/dstack.sock" in signer["volumes"]
    assert "journal:/data" in signer["volumes"]  # the journal outlives the container
    assert args.journal.startswith("/data/")


def test_vllm_serves_the_model_that_the_init_step_fetched_into_a_tmpfs(compose):
    services = compose["services"]
    command = services["model-fetch"]["command"]
    assert command[:3] == ["teelog", "model", "fetch"]
    args = build_parser().parse_args(command[1:])
    assert args.func is cmd_model_fetch and args.quote_provider == "dstack"
    assert "/var/run/dstack.sock:/var/run/dstack.sock" in services["model-fetch"]["volumes"]
    assert f"model-plain:{args.out}" in services["model-fetch"]["volumes"]
    assert compose["volumes"]["model-plain"]["driver_opts"]["type"] == "tmpfs"
    vllm = services["vllm"]
    assert vllm["command"][:3] == ["vllm", "serve", str(args.out)]
    assert f"model-plain:{args.out}:ro" in vllm["volumes"]
    assert vllm["depends_on"]["model-fetch"] == {"condition": "service_completed_successfully"}


def test_only_the_signer_is_published_and_both_services_reserve_gpus(compose):
    services = compose["services"]
    assert "ports" not in services["vllm"]
    assert services["signer"]["ports"] == ["8000:8000"]
    for name in ("vllm", "signer"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


def test_both_services_run_the_image_built_from_node_dockerfile(compose):
    images = {s["image"] for s in compose["services"].values()}
    assert len(images) == 1
    assert "teelog-node" in images.pop()


def test_dockerfile_builds_on_vllm_and_copies_every_package_of_the_distribution():
    dockerfile = (NODE / "Dockerfile").read_text()
    assert re.search(r"^ARG VLLM_IMAGE=vllm/vllm-openai:v[\d.]+$", dockerfile, re.M)
    copied = set(re.findall(r"^COPY (\w+)/ ", dockerfile, re.M))
    pyproject = (REPO / "pyproject.toml").read_text()
    packages = set(re.findall(r'^"teelog(?:\.\w+)?" = "(\w+)"$', pyproject, re.M))
    assert packages and packages <= copied
    assert all((REPO / p).is_dir() for p in copied)
