"""What an operator deploys: docker-compose.yml, the Dockerfile and .env.example, read as
files (no Docker engine here): valid against the Compose specification's JSON schema, healthy,
pinned, without default secrets, and passing every setting to the process that reads it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from fathom.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
FATHOM_SERVICES = ("worker", "bot")
SECRET = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def test_the_compose_file_satisfies_the_compose_specification() -> None:
    checked = subprocess.run(
        [
            str(Path(sys.executable).with_name("check-jsonschema")),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_service_has_a_healthcheck_and_a_restart_policy() -> None:
    for name, service in services().items():
        assert service.get("healthcheck", {}).get("test"), name
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name


def test_no_secret_has_a_default_value() -> None:
    text = COMPOSE.read_text()
    for variable, default in re.findall(r"\$\{(\w+):?-([^}]*)\}", text):
        if SECRET.search(variable):
            assert default == "", f"{variable} has a default"
    for variable in ("FATHOM_DISCORD_TOKEN", "REDIS_PASSWORD"):
        assert re.search(rf"\$\{{{variable}:\?", text), f"{variable} is not required"


def test_images_are_pinned() -> None:
    for name, service in services().items():
        image = service.get("image", "")
        if service.get("build"):
            continue
        tag = image.rpartition(":")[2]
        # A release number, or llama.cpp's build number (server-b11312).
        assert re.search(r"\d+\.\d+|-b\d{4,}$", tag), f"{name}: {image} is not pinned"
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM "):
            assert re.search(r":\d+\.\d+\.\d+", line), line


def test_every_setting_reaches_the_fathom_processes() -> None:
    fields = {f"FATHOM_{name.upper()}" for name in Settings.model_fields}
    readme = set(re.findall(r"FATHOM_[A-Z_]+", (ROOT / "README.md").read_text()))
    # FATHOM_CONFIG names the settings file; the rest are the development tools' own.
    tools = {"FATHOM_REDIS_SERVER", "FATHOM_CACHE_DIR", "FATHOM_SIM_DATASET"}
    unknown = readme - fields - tools - {"FATHOM_", "FATHOM_CONFIG"}
    assert unknown == set(), f"the README names settings that do not exist: {unknown}"
    for name in FATHOM_SERVICES:
        env_files = services()[name]["env_file"]
        assert {"path": ".env", "required": False} in env_files, name
        for variable in services()[name].get("environment", {}):
            assert variable in fields, f"{name} sets {variable}, which nothing reads"


def test_env_example_documents_every_variable() -> None:
    example = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"FATHOM_{name.upper()}=" in example, name
    for variable in set(re.findall(r"\$\{(\w+)", COMPOSE.read_text())):
        assert f"{variable}=" in example, variable


def test_the_model_server_takes_at_least_one_request_per_solve_worker() -> None:
    tgi = " ".join(services()["tgi"]["command"])
    taken = int(re.search(r"max-concurrent-requests=\$\{\w+:-(\d+)\}", tgi).group(1))  # type: ignore[union-attr]
    assert taken >= Settings().workers
    assert "--usage-stats=off" in tgi
    assert "--max-total-tokens=16384" in tgi


def test_the_dockerfile_installs_the_package_as_the_readme_does_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package
    assert "pip install --no-cache-dir ." in dockerfile
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") >= 2  # multi-stage
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert "npm ci --omit=dev" in dockerfile  # the MathJax renderer
    assert "FATHOM_CONFIG=/app/config/fathom.toml" in dockerfile
    assert "./config:/app/config:ro" in COMPOSE.read_text()
