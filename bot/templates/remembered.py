"""Renders remembered per snapshot of the templates, so that the same message is rendered once."""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any


class RememberedRenders:
    """The last renders of one snapshot of the templates, by template name and context.

    A render depends on nothing but the template and its context (the sandbox offers no clock and
    no randomness), so the same message need not cross to a worker twice: a re-plan renders the
    same hundreds of messages each time, and secretaries ask for 帮助 and 进度 in the same words.
    A context that cannot be pickled could not reach a worker either; it is rendered, not remembered.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._renders: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, context: Mapping[str, Any], render: Callable[[], Any]) -> Any:
        try:
            key = pickle.dumps((name, dict(context)), protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            return render()
        with self._lock:
            if key in self._renders:
                self._renders.move_to_end(key)
                return self._renders[key]
        rendered = render()  # outside the lock: renders of other messages go on meanwhile
        with self._lock:
            self._renders[key] = rendered
            if len(self._renders) > self.size:
                self._renders.popitem(last=False)
        return rendered
