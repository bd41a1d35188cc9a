"""Discord's JSON error responses ({code, message[, errors]}) as an exception handlers raise."""

from __future__ import annotations

from typing import Any


class DiscordError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None):
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    @classmethod
    def form(cls, field_path: str, error_code: str, text: str) -> DiscordError:
        """A 400 Invalid Form Body naming the field, shaped like Discord's nested errors."""
        node: dict[str, Any] = {"_errors": [{"code": error_code, "message": text}]}
        for part in reversed(field_path.split(".")):
            node = {part: node}
        return cls(400, 50035, "Invalid Form Body", node)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body
