"""Tenants: with API keys configured, each key is a tenant. A task records the key id of the key
that created it (a hash: the key itself is never stored); a key reads, cancels and lists only its
own tasks, an admin key (WANIMAGE_ADMIN_API_KEYS) every task. Signed image URLs stay shareable:
a URL is a capability, handed out only to the task's owner."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def key_id(key: str) -> str:
    """A stable, non-reversible id for an API key: what the task rows and the logs carry."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Tenant:
    key_id: str | None  # None: the server has no API keys, everyone shares one space
    admin: bool = False

    @property
    def sees_all(self) -> bool:
        return self.admin or self.key_id is None

    def owns(self, owner: str | None) -> bool:
        """Whether this tenant may see a task whose creator's key id is `owner`."""
        return self.sees_all or owner == self.key_id

    @property
    def list_owner(self) -> str | None:
        """The owner filter for lists: None (everyone's) for an admin or a server without keys."""
        return None if self.sees_all else self.key_id


ANYONE = Tenant(None)  # a server without keys, and the service's own calls
