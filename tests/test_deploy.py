"""The Dockerfile, deploy/compose.yaml and deploy/nginx.conf name only what the code has.

There is no container engine here, so the files are checked statically: every ``teelog``
command line they run parses with the real CLI parser, every ``TEELOG_*`` variable is read
by the code, ports agree between the command, the compose file and the proxy, every bind
mount exists in deploy/, and the image installs from the hash-pinned lock file. Names that
issue 12 gives to parts still being built (``teelog db upgrade``, ``TEELOG_DATABASE``,
``TEELOG_OBJECTS``, the ``AWS_*`` variables of the S3 backend) must either exist in the code
or be listed as not yet wired in docs/deploy.md, so the compose file never names something
nobody knows about.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from teelog.collector import load_config

from teelog.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PACKAGES = ("attestation", "log", "entries", "models", "broker", "node", "collector",
            "explorer", "monitor", "witness", "teelog")
IMAGE = "teelog:latest"


def _source_text() -> str:
    return "\n".join(
        p.read_text() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
    )


def _pending_in_docs() -> set[str]:
    """Names docs/deploy.md lists under "Not yet wired" (one `name` per bullet)."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## Not yet wired", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([^`]+)`", section, re.M))


def _teelog_argvs(service: dict) -> list[list[str]]:
    """Every ``teelog`` invocation a service runs (its command, or the shell script in it)."""
    entry = service.get("entrypoint")
    command = service.get("command") or []
    if entry == ["sh", "-c"]:
        script = " ".join(command)
        argvs = []
        for part in re.split(r"&&|\|\||[()]", script):
            words = shlex.split(part)
            if words and words[0] == "teelog":
                argvs.append(words[1:])
        return argvs
    return [list(command)]


def parse_problem(argv: list[str], pending: set[str]) -> str | None:
    """Why ``teelog ARGV`` would not parse, or None (a pending subcommand is let through)."""
    if " ".join(argv[:2]) in pending:
        return None
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code != 0:
            return f"teelog {' '.join(argv)}: {err.getvalue().strip().splitlines()[-1]}"
    return None


def compose_problems(doc: dict, source: str, pending: set[str]) -> list[str]:
    """Everything in a parsed compose file that the code or deploy/ does not back."""
    problems: list[str] = []
    services = doc["services"]
    declared_volumes = set(doc.get("volumes") or {})
    for name, svc in services.items():
        for var in (svc.get("environment") or {}):
            read = re.search(rf"\b{var}\b", source) is not None
            if var.startswith(("TEELOG_", "AWS_")) and not read and var not in pending:
                problems.append(f"{name}: environment {var} is read nowhere in the code")
        for vol in svc.get("volumes") or []:
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                if not (DEPLOY / src).is_file():
                    problems.append(f"{name}: bind mount {src} is not in deploy/")
            elif src not in declared_volumes:
                problems.append(f"{name}: volume {src} is not declared")
        if svc.get("image") != IMAGE:
            continue
        for argv in _teelog_argvs(svc):
            if (p := parse_problem(argv, pending)) is not None:
                problems.append(f"{name}: {p}")
            if argv[:1] == ["serve"]:
                port = argv[argv.index("--port") + 1] if "--port" in argv else "8000"
                if port not in [str(p) for p in svc.get("expose") or []]:
                    problems.append(f"{name}: serves on {port} but exposes {svc.get('expose')}")
        data = (svc.get("environment") or {}).get("TEELOG_DATA")
        if data and not any(v.split(":")[1] == data for v in svc.get("volumes") or []):
            problems.append(f"{name}: TEELOG_DATA {data} is not a mounted volume")
    return problems


def nginx_problems(conf: str, doc: dict) -> list[str]:
    """Upstream servers of the proxy that are not services listening on that port."""
    problems = []
    services = doc["services"]
    for host, port in re.findall(r"^\s*server\s+([\w.-]+):(\d+);", conf, re.M):
        svc = services.get(host)
        if svc is None:
            problems.append(f"nginx upstream {host} is not a compose service")
            continue
        words = [str(w) for w in (svc.get("command") or [])]
        listens = [str(p) for p in svc.get("expose") or []] + [
            w.split("=", 1)[1] for w in words if w.startswith("-s3.port=")
        ]
        if port not in listens:
            problems.append(f"nginx upstream {host}:{port}: the service listens on {listens}")
    return problems


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def source() -> str:
    return _source_text()


def test_every_command_variable_volume_and_port_of_the_compose_file_exists(compose, source):
    assert compose_problems(compose, source, _pending_in_docs()) == []


def test_the_proxy_forwards_to_services_on_the_ports_they_listen_on(compose):
    conf = (DEPLOY / "nginx.conf").read_text()
    assert nginx_problems(conf, compose) == []
    assert "location /log/" in conf and "proxy_pass http://objects/" in conf


def test_the_checks_catch_a_wrong_option_variable_port_and_mount(compose, source):
    bad = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    ex = bad["services"]["explorer-1"]
    ex["command"] = ["serve", "--port", "9000", "--threads", "8"]
    ex["environment"] = {**ex["environment"], "TEELOG_NO_SUCH_SETTING": "1"}
    ex["volumes"] = ["./missing.toml:/etc/x:ro", "nosuchvolume:/var/lib/teelog"]
    found = "\n".join(compose_problems(bad, source, set()))
    assert "unrecognized arguments: --threads 8" in found
    assert "serves on 9000" in found
    assert "TEELOG_NO_SUCH_SETTING" in found
    assert "./missing.toml is not in deploy/" in found
    assert "volume nosuchvolume is not declared" in found
    conf = "upstream x {\n    server explorer-1:9999;\n    server nowhere:80;\n}\n"
    found = "\n".join(nginx_problems(conf, compose))
    assert "explorer-1:9999" in found and "nowhere is not a compose service" in found


def test_pending_names_are_listed_in_the_deploy_guide_until_they_exist(compose, source):
    pending = _pending_in_docs()
    # A pending name nobody documents would be a name the compose file invents.
    assert parse_problem(["db", "upgrade"], set()) is None or "db upgrade" in pending
    for name in pending:
        assert name in (ROOT / "deploy" / "compose.yaml").read_text(), f"{name} is unused"


def test_the_collector_config_of_the_deployment_loads(compose):
    config = load_config(DEPLOY / "collector.toml")
    data = compose["services"]["collector"]["environment"]["TEELOG_DATA"]
    assert str(config.data) == data


def test_the_image_is_non_root_hash_pinned_and_health_checked():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root\b|0\b)\S+", text, re.M)
    assert "--require-hashes -r requirements.lock" in text
    assert re.search(r"^HEALTHCHECK .*\n.*127\.0\.0\.1:8000/healthz", text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert parse_problem(yaml.safe_load(cmd.group(1)), set()) is None


def test_the_lock_file_pins_every_dependency_with_hashes():
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        m.group(1).lower().replace("_", "-")
        for m in re.finditer(r"^([A-Za-z0-9._-]+)==\S+ \\\n\s+--hash=sha256:", lock, re.M)
    }
    unhashed = re.findall(r"^([A-Za-z0-9._-]+==\S+)\s*$", lock, re.M)
    assert unhashed == []
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["postgres"]
    for req in wanted:
        name = re.match(r"[A-Za-z0-9._-]+", req).group(0).lower().replace("_", "-")
        assert name in pinned, f"{name} is a dependency but not in requirements.lock"
