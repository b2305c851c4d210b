"""Retained messages in the embedded broker: delivered only where the ACL allows, and kept
across restarts when asked to."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

from amqtt.broker import Broker, BrokerContext
from amqtt.contexts import Action
from amqtt.plugins.base import BasePlugin
from amqtt.session import Session

from .plugins import PolicyConfig

log = logging.getLogger(__name__)


class FleetBroker(Broker):
    """amqtt's broker with retained messages delivered as MQTT 3.1.1 and the ACL require.

    amqtt 0.12.1 sends the retained messages that match a new subscription without asking the
    topic plugins whether the client may read them, and when a persistent session resumes it
    sends the retained messages matching *every* client's subscriptions, at QoS 0. Here a
    client gets only the retained messages of its own subscriptions that it may read. amqtt
    also flags the messages it queued for an absent client as retained when it delivers them;
    here they go out as what they are, ordinary messages (retain 0, as MQTT-3.3.1-9 wants)."""

    async def _publish_session_retained_messages(self, session: Session) -> None:
        handler = self._get_handler(session)
        queue = session.retained_messages
        if handler is None:
            return
        sends = []
        while not queue.empty():
            queued = queue.get_nowait()
            sends.append(
                asyncio.ensure_future(
                    handler.mqtt_publish(queued.topic, queued.data, queued.qos, False)
                )
            )
        if sends:
            await asyncio.wait(sends)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter, _ = subscription
        qos = next(
            (
                q
                for s, q in self._subscriptions.get(topic_filter, [])
                if s.client_id == session.client_id
            ),
            None,
        )
        handler = self._get_handler(session)
        if qos is None or handler is None:
            return
        sends = [
            asyncio.ensure_future(
                handler.mqtt_publish(topic, retained.data, min(qos, retained.qos or 0), True)
            )
            for topic, retained in list(self._retained_messages.items())
            if self._matches(topic, topic_filter)
            and await self._topic_filtering(session, topic, Action.RECEIVE)
        ]
        if sends:
            await asyncio.wait(sends)


class RetainedFilePlugin(BasePlugin[BrokerContext]):
    """Keeps the retained messages (TUF metadata, device states) in an SQLite file, so that a
    restarted broker still answers a new subscriber with the fleet's latest word."""

    Config = PolicyConfig

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        path: Path | None = self.config.policy.retained_file
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(path, isolation_level=None)  # autocommit
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS retained"
                " (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL)"
            )

    async def on_broker_post_start(self) -> None:
        if self._db is None:
            return
        rows = self._db.execute("SELECT topic, payload, qos FROM retained").fetchall()
        for topic, payload, qos in rows:
            await self.context.retain_message(topic, payload, qos)
        log.info("%d retained messages restored", len(rows))

    async def on_broker_retained_message(
        self, *, client_id: str | None, retained_message: Any
    ) -> None:
        if self._db is None or client_id is not None:  # not a retained topic: a queued message
            return
        if retained_message.data:
            self._db.execute(
                "INSERT OR REPLACE INTO retained VALUES (?, ?, ?)",
                (retained_message.topic, bytes(retained_message.data), retained_message.qos or 0),
            )
        else:  # an empty retained publish clears the topic
            self._db.execute("DELETE FROM retained WHERE topic = ?", (retained_message.topic,))

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
