"""Keeping the bot's catalogs in step with its code (gettext, through Babel).

    .venv/bin/python -m devtools.i18n update     # bot/locales/fathom.pot, and each .po merged
    .venv/bin/python -m devtools.i18n check      # texts without a translation (exit 1 if any)

The template holds every text the bot writes: the ones marked in bot/ (`t.gettext`,
`t.ngettext`, `t.pgettext`, `N_`), found by Babel's Python extractor, and the application
commands' names, descriptions, options and choices, as discord.py asks a translator for them
(the extensions' commands are built without connecting anywhere). Names carry the msgctxt
`command name` (Discord wants them lower case, without spaces, at most 32 characters).
`update` merges the template into each language's .po (new texts empty, vanished ones kept as
obsolete `#~` entries, as `msgmerge` does); translators fill in `msgstr`.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import COMMAND_NAME, DEFAULT_LANGUAGE, DOMAIN, LANGUAGES, LOCALES, catalog_path

BOT = Path(__file__).resolve().parent.parent / "bot"
KEYWORDS: dict[str, Any] = {
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "N_": None,
}
TEMPLATE = LOCALES / f"{DOMAIN}.pot"


def code_texts() -> Iterator[tuple[str | tuple[str, ...], str | None, str]]:
    """(msgid or (singular, plural), msgctxt, where) for every text marked in bot/."""
    for filename, line, message, _comments, context in extract_from_dir(
        str(BOT), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        yield message, context, f"bot/{filename}:{line}"


class _Recorder:
    """A translator that translates nothing and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bool]] = []

    async def load(self) -> None:
        pass

    async def unload(self) -> None:
        pass

    async def _checked_translate(self, string: Any, locale: Any, context: Any) -> str | None:
        from discord import app_commands

        names = (
            app_commands.TranslationContextLocation.command_name,
            app_commands.TranslationContextLocation.group_name,
            app_commands.TranslationContextLocation.parameter_name,
        )
        self.asked.append((string.message, context.location in names))
        return None


async def _command_texts() -> list[tuple[str, bool]]:
    import redis.asyncio as aioredis
    from discord import app_commands

    from bot.client import FathomBot, extension_names
    from fathom.settings import Settings

    bot = FathomBot(Settings())
    bot.redis = aioredis.Redis()  # never used: nothing connects
    cogs: list[Any] = []

    async def record(cog: Any, **_kwargs: Any) -> None:
        cogs.append(cog)

    setattr(bot, "add_cog", record)  # noqa: B010 (build the cogs, load none)
    for name in extension_names():
        await importlib.import_module(name).setup(bot)
    recorder = _Recorder()
    for cog in cogs:
        group = getattr(cog, "__cog_app_commands_group__", None)
        found = [group] if group is not None else list(cog.get_app_commands())
        found += [v for v in vars(cog).values() if isinstance(v, app_commands.ContextMenu)]
        for command in found:
            await command.get_translated_payload(bot.tree, recorder)
    await bot.redis.aclose()
    return recorder.asked


def command_texts() -> list[tuple[str, bool]]:
    """(text, is a name) for every string of the application commands."""
    return asyncio.run(_command_texts())


def template() -> Catalog:
    catalog = Catalog(domain=DOMAIN, project="Fathom", charset="utf-8")
    for message, context, where in code_texts():
        path, line = where.rsplit(":", 1)
        catalog.add(message, locations=[(path, int(line))], context=context)
    for text, is_name in command_texts():
        catalog.add(
            text,
            auto_comments=["an application command's text (names: lower case, no spaces, ≤ 32)"],
            context=COMMAND_NAME if is_name else None,
        )
    return catalog


def update() -> None:
    built = template()
    with TEMPLATE.open("wb") as out:
        write_po(out, built, width=100, omit_header=False)
    for language in LANGUAGES:
        if language == DEFAULT_LANGUAGE:
            continue
        path = catalog_path(language)
        if path.exists():
            with path.open("rb") as source:
                catalog = read_po(source, locale=language, domain=DOMAIN)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=language, domain=DOMAIN, project="Fathom")
        catalog.update(built, no_fuzzy_matching=True)
        with path.open("wb") as out:
            write_po(out, catalog, width=100)
        print(f"updated {path}", file=sys.stderr)


def missing(language: str) -> list[str]:
    """Texts of the template with no (or only a fuzzy) translation in `language`."""
    with catalog_path(language).open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    found: list[str] = []
    for message in template():
        if not message.id:
            continue
        known = catalog.get(message.id, context=message.context)
        value = None if known is None else known.string
        strings = [value] if isinstance(value, str) else list(value or [])
        if known is None or known.fuzzy or not all(strings):
            found.append(str(message.id))
    return found


def main(argv: list[str] | None = None) -> int:
    action = (argv if argv is not None else sys.argv[1:] or ["check"])[0]
    if action == "update":
        update()
        return 0
    gaps = {language: missing(language) for language in LANGUAGES if language != "en"}
    for language, texts in gaps.items():
        for text in texts:
            print(f"{language}: no translation: {text!r}")
    return 1 if any(gaps.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
