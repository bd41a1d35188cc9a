"""Discord's checks on a message body, as pure functions raising DiscordError like the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devtools.fakediscord.errors import DiscordError
from devtools.fakediscord.records import JSON, iter_components

MAX_CONTENT = 2000
MAX_USER_CONTENT = 4000
"""What a person may type into one message (with Nitro; 2,000 without)."""
MAX_EMBEDS = 10
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_TOTAL = 6000
MAX_FILES = 10
MAX_ACTION_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_V2_COMPONENTS = 40
MAX_V2_TEXT = 4000
MAX_CUSTOM_ID = 100
MAX_SELECT_OPTIONS = 25
MAX_SELECT_VALUES = 25
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15
TEXT_DISPLAY = 10
ACTION_ROW = 1
STRING_SELECT = 3
SELECT_TYPES = (3, 5, 6, 7, 8)


def sendable_flags(body: JSON, *, interaction: bool) -> int:
    """The flags a sender may set; EPHEMERAL only on interaction responses."""
    allowed = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2
    if interaction:
        allowed |= FLAG_EPHEMERAL
    return int(body.get("flags") or 0) & allowed


def validate_message(
    body: JSON,
    upload_sizes: Sequence[int],
    *,
    creating: bool,
    flags: int,
    attachment_limit: int,
    content_limit: int = MAX_CONTENT,
) -> None:
    """Raise the DiscordError Discord answers for this create or edit body, if any.

    `flags` are the message's flags after the request (components v2 forbids content/embeds);
    `content_limit` is a bot's 2,000 characters, or a person's 4,000 (MAX_USER_CONTENT).
    """
    content = body.get("content")
    if content is not None and len(str(content)) > content_limit:
        raise DiscordError.form(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {content_limit} or fewer in length."
        )
    embeds: list[JSON] = list(body.get("embeds") or [])
    _check_embeds(embeds)
    if len(upload_sizes) > MAX_FILES:
        raise DiscordError.form(
            "files", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length."
        )
    if any(size > attachment_limit for size in upload_sizes):
        raise DiscordError(413, 40005, "Request entity too large")
    components: list[JSON] = list(body.get("components") or [])
    if flags & FLAG_IS_COMPONENTS_V2:
        if content or embeds:
            raise DiscordError.form(
                "content",
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' and 'embeds' fields cannot be used when using components v2",
            )
        _check_v2_components(components)
    else:
        _check_action_rows(components)
    if creating:
        has_any = content or embeds or upload_sizes or components
        if not (has_any or body.get("sticker_ids") or body.get("poll")):
            raise DiscordError(400, 50006, "Cannot send an empty message")


def _check_embeds(embeds: list[JSON]) -> None:
    if len(embeds) > MAX_EMBEDS:
        raise DiscordError.form(
            "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
        )
    total = 0
    for index, embed in enumerate(embeds):
        description = str(embed.get("description") or "")
        if len(description) > MAX_EMBED_DESCRIPTION:
            raise DiscordError.form(
                f"embeds.{index}.description",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_EMBED_DESCRIPTION} or fewer in length.",
            )
        total += len(description) + len(str(embed.get("title") or ""))
        total += len(str((embed.get("footer") or {}).get("text") or ""))
        total += len(str((embed.get("author") or {}).get("name") or ""))
        for embed_field in embed.get("fields") or []:
            total += len(str(embed_field.get("name", ""))) + len(str(embed_field.get("value", "")))
    if total > MAX_EMBED_TOTAL:
        raise DiscordError.form(
            "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )


def _check_custom_ids(components: list[JSON]) -> None:
    seen: set[Any] = set()
    for component in iter_components(components):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if len(str(custom_id)) > MAX_CUSTOM_ID:
            raise DiscordError.form(
                "components", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
            )
        if custom_id in seen:
            raise DiscordError.form(
                "components", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id duplicated"
            )
        seen.add(custom_id)


def _check_selects(components: list[JSON]) -> None:
    """A select fills its action row; a string select has 1-25 options; min_values 0-25 and
    max_values 1-25."""
    flat = iter_components(components)
    for row in flat:
        children = row.get("components") or []
        if (
            row.get("type") == ACTION_ROW
            and len(children) > 1
            and any(c.get("type") in SELECT_TYPES for c in children)
        ):
            raise DiscordError.form(
                "components",
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
    for select in (c for c in flat if c.get("type") in SELECT_TYPES):
        if select["type"] == STRING_SELECT:
            options = select.get("options") or []
            if not 1 <= len(options) <= MAX_SELECT_OPTIONS:
                raise DiscordError.form(
                    "components",
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {MAX_SELECT_OPTIONS} in length.",
                )
        for key, low in (("min_values", 0), ("max_values", 1)):
            value = int(select.get(key, 1))
            if value < low:
                raise DiscordError.form(
                    "components",
                    "NUMBER_TYPE_MIN",
                    f"int value should be greater than or equal to {low}.",
                )
            if value > MAX_SELECT_VALUES:
                raise DiscordError.form(
                    "components",
                    "NUMBER_TYPE_MAX",
                    f"int value should be less than or equal to {MAX_SELECT_VALUES}.",
                )


def _check_action_rows(components: list[JSON]) -> None:
    if len(components) > MAX_ACTION_ROWS:
        raise DiscordError.form(
            "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length."
        )
    for row in components:
        if row.get("type") != ACTION_ROW:
            raise DiscordError.form(
                "components",
                "UNION_TYPE_CHOICES",
                "Top-level components must be action rows without the components v2 flag",
            )
        if len(row.get("components") or []) > MAX_ROW_ITEMS:
            raise DiscordError.form(
                "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROW_ITEMS} or fewer in length."
            )
    _check_selects(components)
    _check_custom_ids(components)


def _check_v2_components(components: list[JSON]) -> None:
    flat = iter_components(components)
    if len(flat) > MAX_V2_COMPONENTS:
        raise DiscordError.form(
            "components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_V2_COMPONENTS} or fewer in total."
        )
    text = sum(len(str(c.get("content") or "")) for c in flat if c.get("type") == TEXT_DISPLAY)
    if text > MAX_V2_TEXT:
        raise DiscordError.form(
            "components",
            "MAX_TEXT_DISPLAY_LENGTH_EXCEEDED",
            f"Text displays may hold at most {MAX_V2_TEXT} characters in total",
        )
    _check_selects(components)
    _check_custom_ids(components)
