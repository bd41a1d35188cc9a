"""A fake Discord (REST v10 + gateway) for running the real discord.py client in tests.

Usage (pytest-asyncio, everything in the test's event loop)::

    async def test_solve(fake_discord: FakeDiscord) -> None:      # fixture in tests/conftest.py
        guild = fake_discord.create_guild("Study")
        channel = fake_discord.create_text_channel(guild, "math")
        student = fake_discord.create_user("student")
        fake_discord.add_member(guild, student)
        client = discord.Client(intents=..., guild_ready_timeout=0.05)  # built after the fixture
        async with running(client, fake_discord):                  # devtools.fakediscord.client
            await tree.sync()
            ix = await fake_discord.send_slash_command(
                "solve", user=student, channel=channel, options={"question": "1+1"})
            await fake_discord.wait_for_ack(ix)
            [reply] = await fake_discord.wait_for_responses(ix)
        assert reply.allowed_mentions == {"parse": []}

Simulated users post with `send_message` and `send_dm`, and interact with `send_slash_command`,
`send_user_command`, `send_message_command`, `click_button`, `choose` (string selects) and
`submit_modal`; an interaction is refused (PermissionError, LookupError, ValueError, TypeError)
where Discord's client would not let the user do it. `override_command_permissions` is a
server admin's Integrations settings.

A bot in another process: pass `fake_discord.env()` (FATHOM_DISCORD_API_URL,
FATHOM_DISCORD_GATEWAY_URL, FATHOM_DISCORD_TOKEN) to it.
"""

from devtools.fakediscord.errors import DiscordError
from devtools.fakediscord.records import (
    AttachmentRecord,
    CallbackRecord,
    ChannelRecord,
    CommandPermission,
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
from devtools.fakediscord.server import FakeDiscord, Upload

__all__ = [
    "AttachmentRecord",
    "CallbackRecord",
    "ChannelRecord",
    "CommandPermission",
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
