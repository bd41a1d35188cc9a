"""The security review (docs/security.md), where a test can hold it: what the deployment exposes,
where secrets come from and go, and what the code never does (pickle, shell, TeX engines)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pydantic import SecretStr

from fathom.settings import Settings
from tests.test_deployment import FATHOM_SERVICES, services

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("fathom", "bot", "worker", "cli")
"""What runs in a deployment (the simulator and devtools are development tools)."""
SECRET_NAME = re.compile(r"(^|_)(TOKEN|PASSWORD|SECRET|API_KEY)$")
TEX_PROGRAMS = ("tex", "latex", "pdflatex", "xelatex", "lualatex", "dvipng", "dvisvgm", "kpsewhich")


def production_modules() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text("utf-8"), str(path)))
        for package in PRODUCTION
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_nothing_reachable_from_outside_the_compose_network() -> None:
    for name, service in services().items():
        assert "ports" not in service, f"{name} publishes a port"
        assert service.get("network_mode") != "host", name


def test_redis_wants_a_password_and_fathom_gives_it() -> None:
    everything = services()
    assert "--requirepass" in " ".join(everything["redis"]["command"])
    for name in FATHOM_SERVICES:
        url = everything[name]["environment"]["FATHOM_REDIS_URL"]
        assert url.startswith("redis://:${REDIS_PASSWORD:?"), name


def test_the_model_servers_get_no_fathom_secret() -> None:
    for name, service in services().items():
        if name in FATHOM_SERVICES or name == "redis":
            continue
        assert "env_file" not in service, f"{name} reads .env (and with it the Discord token)"
        for variable, value in service.get("environment", {}).items():
            assert "FATHOM_" not in f"{variable}{value}", f"{name} gets {variable}"


def test_secrets_are_settings_that_never_print() -> None:
    secret_fields = {n for n in Settings.model_fields if SECRET_NAME.search(n.upper())}
    assert secret_fields == {"discord_token", "model_api_key"}
    for name in secret_fields:
        assert "SecretStr" in str(Settings.model_fields[name].annotation), name
    settings = Settings(discord_token=SecretStr("abc.def.ghi"), model_api_key=SecretStr("sk-123"))
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "abc.def.ghi" not in shown
        assert "sk-123" not in shown


def test_the_shipped_configuration_holds_no_secret() -> None:
    for path in (ROOT / "config").rglob("*"):
        if path.is_file():
            for line in path.read_text("utf-8").splitlines():
                key = line.split("=", 1)[0].strip()
                if SECRET_NAME.search(key.upper()) and "=" in line:
                    value = line.split("=", 1)[1].strip().strip('"')
                    assert value == "", f"{path.name}: {key} has a value"


def test_no_pickle_no_shell_no_eval_in_what_runs() -> None:
    for path, tree in production_modules():
        assert not imported(tree) & {"pickle", "dill", "marshal", "shelve"}, path
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec"), f"{path}:{node.lineno}"
            if isinstance(node, ast.keyword) and node.arg == "shell":
                assert not (isinstance(node.value, ast.Constant) and node.value.value), path


def test_every_rq_object_is_made_with_the_json_serializer() -> None:
    for path, tree in production_modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = ast.unparse(node.func)
            if re.fullmatch(r"(rq\.)?(Queue|Job\.fetch|Job\.create|Worker|SimpleWorker)", called):
                keywords = {keyword.arg for keyword in node.keywords}
                assert "serializer" in keywords, f"{path}:{node.lineno} {called} without it"


def test_no_tex_engine_is_ever_asked_for() -> None:
    """Formulas are drawn by MathJax (JavaScript) or matplotlib's mathtext, never by a TeX
    program: no usetex, no subprocess naming one (tests/render checks it at run time)."""
    for path, tree in production_modules():
        source = path.read_text("utf-8")
        assert not re.search(r"usetex['\"]?\s*[:=\]]\s*True", source), path
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and "subprocess" in ast.unparse(node.func):
                shown = ast.unparse(node)
                for program in TEX_PROGRAMS:
                    assert f"'{program}'" not in shown, f"{path}:{node.lineno}"
