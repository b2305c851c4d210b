"""The embedded broker's rules, as amqtt plugins: who may connect, what they may publish and
read, and how much the broker keeps for a client that is away.

amqtt builds each plugin from a dotted path and a `Config` dataclass; every plugin here gets
the broker's one `Policy` through its config.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amqtt.broker import BrokerContext
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin, BaseTopicPlugin
from amqtt.session import Session

from ..transport.acl import Access, Acl
from .passwords import verify_password

log = logging.getLogger(__name__)

#: Like Mosquitto, a client is declared gone after 1.5 times its keepalive without a packet.
KEEPALIVE_GRACE = 1.5


@dataclass
class Policy:
    """What the plugins enforce. `passwords` None: no authentication, any username is taken
    as given (the demo on loopback); `acl` None: every client may do everything."""

    passwords: dict[str, str] | None
    acl: Acl | None
    max_queued: int  # QoS 1 messages kept per absent client; beyond, the oldest are dropped
    retained_file: Path | None = None  # where retained messages outlive a restart
    #: (address, port) of each connection -> the callback that sets its idle limit (seconds).
    idle_limits: dict[tuple[str, int], Any] = field(default_factory=dict)

    def allows(self, username: str | None, topic: str, access: Access) -> bool:
        return self.acl is None or self.acl.allows(username, topic, access)


@dataclass
class PolicyConfig:
    policy: Any = None  # a Policy; `Any` because amqtt type-checks configs with dacite


class FleetAuthPlugin(BaseAuthPlugin):
    """Username and password against the password file; a last will only on a topic the
    client may write (amqtt would publish any will unchecked); the keepalive enforced."""

    Config = PolicyConfig

    async def authenticate(self, *, session: Session) -> bool:
        policy: Policy = self.config.policy
        user = session.username
        if policy.passwords is not None:
            encoded = policy.passwords.get(user or "")
            # The slow hash runs in a worker thread (hashlib releases the GIL), not on the
            # event loop that serves every other client.
            password = session.password or ""
            if encoded is None or not await asyncio.to_thread(verify_password, password, encoded):
                log.warning("%s: refused: bad username or password (%r)", session.client_id, user)
                return False
        if session.will_flag and not policy.allows(user, session.will_topic or "", Access.WRITE):
            log.warning(
                "%s: refused: user %r may not write its last will's topic %s",
                session.client_id,
                user,
                session.will_topic,
            )
            return False
        set_idle_limit = policy.idle_limits.get((session.remote_address, session.remote_port))
        if set_idle_limit is not None:  # keepalive 0: the client asked not to be timed out
            keep_alive = session.keep_alive
            set_idle_limit(math.ceil(keep_alive * KEEPALIVE_GRACE) if keep_alive > 0 else None)
        return True


class FleetTopicPlugin(BaseTopicPlugin):
    """The ACL: publishes checked per message, deliveries per message and receiver.

    Subscriptions themselves are granted (as Mosquitto does): what a client may read is decided
    for each message, so a subscription to `#` yields exactly the readable topics."""

    Config = PolicyConfig

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        policy: Policy = self.config.policy
        if action is Action.SUBSCRIBE or policy.acl is None:
            return True
        user = session.username if session is not None else None
        access = Access.WRITE if action is Action.PUBLISH else Access.READ
        allowed = policy.allows(user, topic or "", access)
        if not allowed and action is Action.PUBLISH:
            log.warning("user %r may not publish on %s: dropped", user, topic)
        return allowed


class QueueLimitPlugin(BasePlugin[BrokerContext]):
    """Bounds what the broker keeps for an absent client with a persistent session."""

    Config = PolicyConfig

    async def on_broker_retained_message(
        self, *, client_id: str | None, retained_message: Any
    ) -> None:
        if client_id is None:  # a retained topic's message, not a queued one
            return
        found = self.context.get_session(client_id)
        if found is None:
            return
        queue, limit = found.retained_messages, self.config.policy.max_queued
        dropped = 0
        while queue.qsize() > limit:
            queue.get_nowait()
            dropped += 1
        if dropped:
            log.warning("%s: queue full (%d messages): dropped the oldest", client_id, limit)
