from __future__ import annotations

from pathlib import Path

import pytest

from fathom.settings import Settings


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "fathom.toml"
    config.write_text('redis_url = "redis://example:6379/3"\nworkers = 4\n')
    monkeypatch.setenv("FATHOM_CONFIG", str(config))
    monkeypatch.delenv("FATHOM_REDIS_URL", raising=False)
    monkeypatch.setenv("FATHOM_MODEL_URL", "http://tgi:80")
    settings = Settings()
    assert settings.redis_url == "redis://example:6379/3"
    assert settings.workers == 4
    assert settings.model_url == "http://tgi:80"
    monkeypatch.setenv("FATHOM_REDIS_URL", "redis://other:6379/5")
    assert Settings().redis_url == "redis://other:6379/5"


def test_embedded_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FATHOM_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.delenv("FATHOM_REDIS_URL", raising=False)
    monkeypatch.delenv("FATHOM_MODEL_URL", raising=False)
    settings = Settings()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.model_url is None
    assert (settings.temperature, settings.top_p) == (0.6, 0.95)
