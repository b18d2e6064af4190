"""Packaging and delivery: the wheel carries every data file the code reads, the CLI and each subcommand
describe themselves, and docker/ agrees with the local-broker settings and the README's install step."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from app import broker, cli

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "agents", "models")


def tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """Built from a copy of the tracked files, as a clean clone would be (the shared tree stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in tracked():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", str(out), "-q"],
                            cwd=source, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = out.glob("emlops-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_rules_schemas_broker_files_and_every_tracked_data_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for required in ("models/rules/default.toml", "models/schemas/ticket.json", "models/schemas/prediction.json",
                     "app/kafka/pom.xml", "app/kafka/log4j2.properties", "models/adapters/otlp.py",
                     "agents/sinks/agent.py", "app/config.py"):
        assert required in names, required
    data = [f for f in tracked(*PACKAGES) if not f.endswith(".py")]
    missing = [f for f in data if f not in names]
    assert not missing, f"data files left out of the wheel (add them to [tool.setuptools.package-data]): {missing}"
    sources = [f for f in tracked(*PACKAGES) if f.endswith(".py")]
    assert not [f for f in sources if f not in names]


def test_the_wheel_installs_the_emlops_command(wheel: zipfile.ZipFile) -> None:
    [entry_points] = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "emlops = app.cli:main" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"emlops": "app.cli:main"}


def test_emlops_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"  {name}" in out
    assert {"broker", "worker", "demo", "config"} <= set(cli.COMMANDS)
    assert cli.main(["no-such-command"]) == 2


@pytest.mark.parametrize("argv", [[name, "--help"] for name in cli.COMMANDS if name != "worker"]
                         + [["config", "check", "--help"]])
def test_each_subcommand_describes_itself(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: emlops " + argv[0])
    assert "options:" in out or "positional arguments:" in out


def test_worker_help_is_faust_worker_help() -> None:
    result = subprocess.run([sys.executable, "-m", "app.cli", "worker", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--web-port" in result.stdout and "--loglevel" in result.stdout


# --- docker/ ------------------------------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


def test_compose_file_parses_and_brings_up_kraft_kafka_the_worker_and_the_demo() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "worker", "demo"}
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{broker.KAFKA_VERSION}"  # the version the local broker runs
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # like the local broker: emlops declares its topics
    advertised = env["KAFKA_ADVERTISED_LISTENERS"].split("//", 1)[1]
    for name in ("worker", "demo"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == advertised
        assert service["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert services["demo"]["command"] == ["emlops", "demo"] and services["demo"]["profiles"] == ["demo"]


def test_compose_worker_reads_the_example_configuration_and_publishes_its_web_port() -> None:
    worker = compose()["services"]["worker"]
    config_path = worker["environment"]["EMLOPS_CONFIG"]
    mounts = [v.split(":") for v in worker["volumes"]]
    assert [config_path] == [m[1] for m in mounts if m[0] == "./emlops.toml"]
    assert (ROOT / "docker" / "emlops.toml").is_file()
    example = tomllib.loads((ROOT / "docker" / "emlops.toml").read_text())
    assert example["kafka"]["bootstrap_servers"] == worker["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    port = example["emlops"]["web_port"]
    assert f"{port}:{port}" in worker["ports"]


def test_dockerfile_installs_like_the_readme_and_copies_every_package() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    dockerfile = dockerfile.replace("\\\n", " ")  # one line per instruction
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    copies = {line.split()[1] for line in lines if line.startswith("COPY")}
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in include} <= copies
    assert {"pyproject.toml", "README.md"} <= {w for line in lines if line.startswith("COPY") for w in line.split()[1:-1]}
    install = [line for line in lines if line.startswith("RUN") and "pip install" in line]
    assert install and "pip install --no-cache-dir . " in install[0] + " "
    assert "pip install ." in (ROOT / "README.md").read_text()  # the same command the README gives
    assert 'CMD ["emlops", "worker", "-l", "info"]' in lines
    assert "EXPOSE 6066" in lines
