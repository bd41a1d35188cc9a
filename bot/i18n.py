"""The bot's languages: English (the source text) and Vietnamese, from gettext catalogs.

Every text the bot writes is an English msgid marked where it is written — `t.gettext("…")`,
`t.ngettext("…", "…", n)`, `t.pgettext(context, "…")`, or `N_("…")` for a text defined before
a language is known and translated where it is sent — and translated through
`bot/locales/<language>/LC_MESSAGES/fathom.po`, the format translators and their tools know.
The .po file is read with Babel's PO reader when first needed, so it is the only source (no
compiled .mo to keep in step). `devtools/i18n.py` extracts the texts and updates the catalogs;
tests/bot/test_i18n.py fails when a text has no translation.

Which language (`language_of`): the one of the asker's Discord client (`interaction.locale`)
where the bot speaks it, else the server's default (`/fathom-settings language`), else
English. What is sent later — status edits, the solution, buttons — is in the language chosen
when the question was asked (kept in its promise).

Application commands (names, descriptions, options, choices) are translated for Discord's
clients by `CommandTranslator`, discord.py's `app_commands.Translator`: Discord shows each
user the names in their client's language and always sends the English ones back.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

import discord
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from discord import app_commands

DOMAIN = "fathom"
LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"
LANGUAGES = {"en": "English", "vi": "Tiếng Việt"}
"""The languages the bot speaks, by code, each in its own words."""
COMMAND_NAME = "command name"
"""The msgctxt of command, group and option names (lower case, no spaces, at most 32)."""


class Texts:
    """One language's texts: `gettext`, `ngettext`, `pgettext`, and numbers written its way
    (Vietnamese groups digits with dots: `12.345` tokens)."""

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        self.language = language
        self._translations = translations

    def gettext(self, message: str) -> str:
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self._translations.ngettext(singular, plural, count)

    def pgettext(self, context: str, message: str) -> str:
        return self._translations.pgettext(context, message)

    def number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.language)


def N_(message: str) -> str:
    """Marks a text for translation where it is defined; it is translated where it is used."""
    return message


def catalog_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def texts(language: str) -> Texts:
    """The texts of a language (English: the source text itself)."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return Texts(DEFAULT_LANGUAGE, gettext.NullTranslations())
    with catalog_path(language).open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Texts(language, Translations(compiled, domain=DOMAIN))


ENGLISH = texts(DEFAULT_LANGUAGE)


def spoken(locale: discord.Locale | str | None) -> str | None:
    """The bot's language for a Discord locale (`vi`, `en-US`…), or None where it has none."""
    if locale is None:
        return None
    code = locale.value if isinstance(locale, discord.Locale) else str(locale)
    base = code.split("-")[0].lower()
    return base if base in LANGUAGES else None


def language_of(locale: discord.Locale | str | None, server_language: str | None = None) -> str:
    """The asker's language where the bot speaks it, else the server's default, else English."""
    return (
        spoken(locale)
        or (server_language if server_language in LANGUAGES else None)
        or (DEFAULT_LANGUAGE)
    )


_NAMES = (
    app_commands.TranslationContextLocation.command_name,
    app_commands.TranslationContextLocation.group_name,
    app_commands.TranslationContextLocation.parameter_name,
)


class CommandTranslator(app_commands.Translator):
    """Command names, descriptions, options and choices for each client's language."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        language = spoken(locale)
        if language is None or language == DEFAULT_LANGUAGE:
            return None
        return translated(string.message, language, name=context.location in _NAMES)


def translated(message: str, language: str, *, name: bool = False) -> str | None:
    """A command's text in `language`, or None where the catalog has none."""
    t = texts(language)
    found = t.pgettext(COMMAND_NAME, message) if name else t.gettext(message)
    return found if found != message else None
