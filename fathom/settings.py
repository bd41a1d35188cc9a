"""All configuration in one typed place.

Precedence (highest first): environment variables `FATHOM_<FIELD>`, the TOML file named by
`FATHOM_CONFIG` (default: `config/fathom.toml` in the checkout), then the defaults below, so
the project runs on embedded defaults where nothing is configured.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO_ROOT / "config" / "fathom.toml"

FATHOM_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def config_file() -> Path:
    return Path(os.environ.get("FATHOM_CONFIG", DEFAULT_CONFIG_FILE))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FATHOM_",
        extra="ignore",
        frozen=True,
        env_ignore_empty=True,
        use_attribute_docstrings=True,
    )

    # --- where things are -------------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    """A redis:// URL, database number included (FATHOM_REDIS_URL)."""
    model_url: str | None = None
    """Base URL of TGI or any OpenAI-compatible server (FATHOM_MODEL_URL). None: `fathom ask`
    starts the local simulator and says so."""
    model_api_key: SecretStr | None = None
    """The model server's API key (TGI --api-key, vLLM --api-key, llama.cpp --api-key)."""
    model_id: str = "FractalAIResearch/Fathom-R1-14B"
    """The model the server must serve (`fathom doctor` checks it)."""

    # --- prompt and sampling (from the model card) --------------------------------------
    instruction: str = FATHOM_INSTRUCTION
    """Added after every question, as the model card asks."""
    temperature: float = Field(0.6, ge=0.0, le=2.0)
    """Sampling temperature (the model card's 0.6)."""
    top_p: float = Field(0.95, gt=0.0, lt=1.0)
    """Nucleus sampling (the model card's 0.95; TGI rejects 1.0)."""
    seed: int | None = None
    """Fixed sampling seed; None draws a fresh one per job (recorded in the result)."""
    context_tokens: int = Field(16384, gt=0)
    """Fallback for the context length when the server's /info does not say."""
    chars_per_token_estimate: float = Field(2.5, gt=0.0)
    """Safe (pessimistic) chars/token for counting prompt tokens when /tokenize is missing."""

    # --- queues and workers --------------------------------------------------------------
    solve_queue: str = "fathom-solve"
    """The RQ queue of solve jobs."""
    fair_queue: bool = True
    """Servers share the workers fairly, and members within a server (fathom.fairness); off:
    strictly first come, first served."""
    render_queue: str = "fathom-render"
    """The RQ queue of rendering jobs (CPU only)."""
    workers: int = Field(32, ge=1)
    """Solve workers in the pool: match the model server's batch concurrency."""
    render_workers: int = Field(1, ge=0)
    """Render workers in the pool (CPU; each keeps a MathJax node process)."""
    worker_ttl_s: int = Field(30, ge=10)
    """A dead worker's job is noticed this long after its last heartbeat."""
    maintenance_interval_s: int = Field(10, ge=1)
    """How often workers look for abandoned jobs."""
    job_timeout_s: int = Field(1800, ge=10)
    """Hard limit of one solve job, queueing excluded."""
    render_job_timeout_s: int = Field(120, ge=5)
    """Hard limit of one rendering job (a dead render worker's job is noticed after this)."""
    cjk_font: Path | None = None
    """A font file for Chinese, Japanese and Korean words in formulas; unset: Noto Sans CJK (the
    Docker image has it) or another common CJK font, found where Debian puts them."""
    job_retries: int = Field(2, ge=0)
    """Times an abandoned job (its worker died) is put back on the queue."""
    result_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    """How long results (and the bot's records of them) are kept."""

    # --- health and metrics (one HTTP endpoint per long-running process) ---------------
    http_host: str = "127.0.0.1"
    """Where `/metrics` and `/healthz` listen (0.0.0.0 inside a container)."""
    worker_http_port: int = Field(9101, ge=0, le=65535)
    """The worker pool's endpoint; 0: none."""
    bot_http_port: int = Field(9102, ge=0, le=65535)
    """The bot's endpoint; 0: none."""
    log_format: Literal["text", "json"] = "text"
    """Worker logs as text lines or JSON lines; every line of a job carries its job id."""

    # --- talking to the model server -------------------------------------------------------
    read_timeout_s: float = Field(120.0, gt=0.0)
    """Longest silence between two stream chunks before the stream counts as stalled."""
    connect_attempts: int = Field(8, ge=1)
    """Tries against a model server that cannot be reached or is loading."""
    connect_backoff_s: float = Field(2.0, gt=0.0)
    """First wait between those tries (doubling, with jitter)."""
    connect_backoff_max_s: float = Field(30.0, gt=0.0)
    """Longest wait between those tries."""
    overload_attempts: int = Field(30, ge=1)
    """Tries against an overloaded model server."""
    overload_backoff_s: float = Field(1.0, gt=0.0)
    """First wait between those tries (doubling, with jitter)."""
    overload_backoff_max_s: float = Field(15.0, gt=0.0)
    """Longest wait between those tries."""
    progress_interval_s: float = Field(1.0, gt=0.0)
    """Least time between two progress events of one job."""

    # --- questions ------------------------------------------------------------------------------
    max_question_chars: int = Field(4000, ge=1)
    """Longest question taken (servers can set a lower limit)."""
    max_samples: int = Field(8, ge=1, le=64)
    """Most samples one question may ask for (`/solve samples:k`, `fathom ask --samples k`: a
    consensus of k answers); servers may set a lower cap. 1 turns consensus off."""

    # --- Discord ----------------------------------------------------------------------------------
    discord_token: SecretStr | None = None
    """The bot's token (developer portal → Bot)."""
    discord_api_url: str = "https://discord.com/api/v10"
    """Discord's REST API, or a REST proxy (nirn-proxy and the like)."""
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    """Discord's gateway."""
    discord_test_guild_id: int | None = None
    """Sync slash commands to this guild only (instant), instead of globally."""
    operator_ids: list[int] = Field(default_factory=list)
    """Discord user ids of the bot's operators: every moderator command in every server, and
    the global pause."""
    daily_quota_per_user: int = Field(0, ge=0)
    """Questions one member may ask per day in one server (servers can set their own); 0: no
    limit."""
    max_pending_per_user: int = Field(2, ge=1)
    """Questions one user may have queued or running at once."""
    question_cooldown_s: float = Field(10.0, ge=0.0)
    """Least time between two accepted questions of one user."""
    status_edit_interval_s: float = Field(2.0, gt=0.0)
    """Least time between two progress edits of one status message."""
    channel_edit_interval_s: float = Field(1.25, ge=0.0)
    """Least time between two progress edits in one channel (Discord limits edits per channel)."""
    bot_edits_per_s: float = Field(5.0, gt=0.0)
    """Bot-wide budget of progress edits per second, however many jobs run."""
    bot_requests_per_s: float = Field(40.0, gt=0.0)
    """The bot's own REST calls per second, below Discord's global 50 (interaction responses
    are not counted by Discord and not paced)."""
    edit_tick_s: float = Field(0.25, gt=0.0)
    """How often the bot looks for due progress edits."""
    queue_position_refresh_s: float = Field(15.0, gt=0.0)
    """How often the queue position of waiting jobs is re-read for their status messages."""
    expected_solve_s: float = Field(120.0, gt=0.0)
    """Assumed solve time for the first ETAs, before the bot has seen real ones."""
    bot_consumer_name: str = "bot-1"
    """This bot's consumer name in the events stream's consumer group."""
    events_block_ms: int = Field(1000, ge=1)
    """Longest wait of one read of the events stream."""
    lost_job_after_s: float = Field(120.0, ge=0.0)
    """A promised job this old with neither an outcome nor a live RQ job will never get one
    (a crash between promising and enqueueing, a work horse killed outright): the bot ends it
    as lost and tells the asker."""
    bot_stop_grace_s: float = Field(5.0, gt=0.0)
    """How long a stopping bot waits for its deliveries and status edits before it closes (what
    is cut short resumes after the restart)."""
    thread_auto_archive_min: Literal[60, 1440, 4320, 10080] = 1440
    """Auto-archive of solution threads: 60, 1440, 4320 or 10080 minutes."""
    discord_message_content_intent: bool = True
    """Ask for message content (privileged) so follow-ups in solution threads can be read."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
