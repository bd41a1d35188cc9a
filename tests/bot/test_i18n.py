"""English and Vietnamese: every text the bot writes has a Vietnamese translation with the same
placeholders, no user-facing literal is left outside the catalogs, the commands reach Discord
localized (names valid as Discord checks them), and a Vietnamese student, or a student of a
server whose default is Vietnamese, is answered in Vietnamese from the first reply to the
buttons under the solution."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from bot import keys as bot_keys
from bot.guild_settings import GuildSettings
from bot.i18n import COMMAND_NAME, catalog_path, language_of, texts
from devtools.i18n import missing
from devtools.rq_threads import ThreadWorkers
from simulator.server import SimulatorServer
from tests.bot.conftest import World, delivery
from tests.bot.test_guild import has_button

BOT = Path(__file__).resolve().parent.parent.parent / "bot"
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")
SENDING = {
    "send",
    "send_message",
    "reply",
    "edit",
    "edit_original_response",
    "edit_message",
    "Embed",
    "add_field",
    "Button",
    "Select",
    "SelectOption",
}
SHOWN = {"content", "title", "name", "value", "description", "label", "placeholder"}


def test_every_text_has_a_vietnamese_translation() -> None:
    assert missing("vi") == []


def test_translations_keep_their_placeholders() -> None:
    with catalog_path("vi").open("rb") as source:
        catalog = read_po(source, locale="vi")
    wrong = []
    for message in catalog:
        if not message.id:
            continue
        ids = [str(i) for i in _many(message.id)]
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for string in (str(s) for s in _many(message.string)):
            if set(PLACEHOLDER.findall(string)) != wanted:
                wrong.append((ids[0], string))
            if string.count("`") % 2 != ids[0].count("`") % 2:
                wrong.append((ids[0], string))
    assert wrong == []


def _many(value: object) -> list[object]:
    """A catalog entry's id or string as a list (plural entries hold several)."""
    return list(value) if isinstance(value, tuple | list) else [value]


def test_vietnamese_command_names_are_valid_names() -> None:
    with catalog_path("vi").open("rb") as source:
        catalog = read_po(source, locale="vi")
    names = [m for m in catalog if m.id and m.context == COMMAND_NAME]
    assert len(names) > 20
    invalid = [
        (m.id, m.string)
        for m in names
        if m.id != "Solve with Fathom"  # a context menu: spaces and capitals allowed
        and not (re.fullmatch(r"[-_\w]{1,32}", str(m.string)) and str(m.string).islower())
    ]
    assert invalid == []


def _literal_text(node: ast.expr) -> str | None:
    """A string the code writes as it stands: a constant, or the literal parts of an
    f-string, when they hold words."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(
            part.value
            for part in node.values
            if isinstance(part, ast.Constant) and isinstance(part.value, str)
        )
    else:
        return None
    return text if re.search(r"[A-Za-z]{3,}", text) else None


def test_no_message_text_is_written_outside_the_catalogs() -> None:
    """What the bot sends, edits or shows (content, embeds, buttons, menus) goes through a
    translation; a literal with words in it there is a text translators never see."""
    found = []
    for path in sorted(BOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in SENDING:
                continue
            values = [*node.args[:1], *(k.value for k in node.keywords if k.arg in SHOWN)]
            for value in values:
                text = _literal_text(value)
                if text is not None:
                    found.append(f"{path.relative_to(BOT.parent)}:{node.lineno}: {text!r}")
    # The ClearConfirm buttons' decorators name them in English; each view relabels them in
    # the moderator's language when it is made.
    assert [line for line in found if "_queue.py" not in line or "label" not in line] == []


def test_the_language_is_the_askers_then_the_servers_then_english() -> None:
    assert language_of("vi") == "vi"
    assert language_of("en-GB", "vi") == "en"
    assert language_of("fr", "vi") == "vi"
    assert language_of("fr") == "en"
    assert language_of(None, None) == "en"
    vi = texts("vi")
    assert vi.gettext("Cancel") == "Huỷ"
    assert (
        vi.ngettext("{count} sample failed", "{count} samples failed", 2) == "{count} lượt thất bại"
    )
    assert vi.number(12345) == "12.345"
    assert texts("en").number(12345) == "12,345"


def _localized(item: dict[str, Any]) -> list[str]:
    """What lacks a Vietnamese name or description in a synced command (recursively)."""
    gaps = []
    if "vi" not in (item.get("name_localizations") or {}):
        gaps.append(f"name {item['name']}")
    if item.get("description") and "vi" not in (item.get("description_localizations") or {}):
        gaps.append(f"description of {item['name']}")
    for option in item.get("options") or []:
        gaps += _localized(option)
    for choice in item.get("choices") or []:
        names = choice.get("name_localizations") or {}
        if "vi" not in names and choice["name"] != "Tiếng Việt":
            gaps.append(f"choice {choice['name']}")
    return gaps


async def test_the_commands_reach_discord_localized(world: World) -> None:
    async with world.bot():
        commands = (
            world.fake.find_command("solve", guild=None),
            world.fake.find_command("queue", guild=None),
        )
        settings = world.fake.find_command("fathom-settings", guild=None)
    assert commands[0]["name_localizations"]["vi"] == "giải"
    options = {o["name"]: o for o in commands[0]["options"]}
    assert options["samples"]["name_localizations"]["vi"] == "số_lượt"
    assert [gap for command in (*commands, settings) for gap in _localized(command)] == []


async def solve_in_vietnamese(world: World, locale: str) -> Any:
    interaction = await world.fake.send_slash_command(
        "solve",
        user=world.student,
        channel=world.channel,
        options={"question": "What is the sum of the first 100 positive integers?"},
        locale=locale,
    )
    await world.fake.wait_for_ack(interaction)
    [reply] = await world.fake.wait_for_responses(interaction)
    return reply


@pytest.mark.parametrize(
    ("locale", "server_language"), [("vi", None), ("fr", "vi")], ids=["client", "server"]
)
async def test_a_vietnamese_student_is_answered_in_vietnamese(
    world: World,
    workers: ThreadWorkers,
    fake_tgi: SimulatorServer,
    locale: str,
    server_language: str | None,
) -> None:
    fake_tgi.config.tokens_per_s = 2000.0
    fake_tgi.config.completion_tokens = 300
    chosen = GuildSettings.model_validate_json(
        world.redis.get(bot_keys.guild_settings(world.guild.id)) or b"{}"
    ).model_copy(update={"language": server_language})
    world.redis.set(bot_keys.guild_settings(world.guild.id), chosen.model_dump_json())
    async with world.bot() as bot:
        reply = await solve_in_vietnamese(world, locale)
        status = world.posts(world.channel)[0]
        cancel = status.components[0]["components"][0]["label"]
        thread = await world.thread()
        posts = await world.wait(
            lambda: (p := world.posts(thread)) and has_button(p[-1], "fathom:again:") and p,
            "the solution",
        )
        await world.wait(lambda: "Đã giải xong" in status.content, "the final status")
        await world.wait(lambda: not delivery(bot).following(), "settled")
    assert reply.content.startswith("Đã xếp hàng ở vị trí #1")
    assert cancel == "Huỷ"
    assert "hỏi:**" in status.content
    assert thread.name.startswith("What is the sum")  # the question, as asked
    assert "**Đáp án cuối cùng:**" in "\n".join(post.content for post in posts)
    labels = [button["label"] for row in posts[-1].components for button in row["components"]]
    assert "Giải lại" in labels
    assert "Trả lời bởi bộ mô phỏng Fathom" in posts[-1].content


async def test_an_english_student_stays_in_english(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 2000.0
    fake_tgi.config.completion_tokens = 300
    async with world.bot() as bot:
        reply = await solve_in_vietnamese(world, "en-US")
        status = world.posts(world.channel)[0]
        await world.wait(lambda: "Solved" in status.content, "the final status")
        await world.wait(lambda: not delivery(bot).following(), "settled")
    assert reply.content.startswith("Queued as #1")
