"""The event bus: handlers subscribe to an event type; events are queued or dispatched now.

`publish` queues an event until the next `drain`; `dispatch` delivers it at once, before
the publisher's next statement runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any


class EventBus:
    """A FIFO queue of events and, per event type, its handlers in subscription order."""

    def __init__(self) -> None:
        self.queue: deque[Any] = deque()
        self.handlers: dict[type, list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type, handler: Callable[[Any], None]) -> None:
        self.handlers.setdefault(kind, []).append(handler)

    def publish(self, event: Any) -> None:
        self.queue.append(event)

    def dispatch(self, event: Any) -> None:
        for handler in self.handlers.get(type(event), ()):
            handler(event)

    def drain(self) -> None:
        """Deliver every queued event, including those its handlers queue."""
        while self.queue:
            self.dispatch(self.queue.popleft())
