"""A fake Discord (REST v10 + gateway) for running the real discord.py client in tests."""

from tests.fakediscord.errors import DiscordError
from tests.fakediscord.records import (
    AttachmentRecord,
    CallbackRecord,
    ChannelRecord,
    GuildRecord,
    InteractionRecord,
    MemberRecord,
    MessageRecord,
    Overwrite,
    RequestRecord,
    Revision,
    RoleRecord,
    UserRecord,
)
from tests.fakediscord.server import FakeDiscord, Upload

__all__ = [
    "AttachmentRecord",
    "CallbackRecord",
    "ChannelRecord",
    "DiscordError",
    "FakeDiscord",
    "GuildRecord",
    "InteractionRecord",
    "MemberRecord",
    "MessageRecord",
    "Overwrite",
    "RequestRecord",
    "Revision",
    "RoleRecord",
    "Upload",
    "UserRecord",
]
