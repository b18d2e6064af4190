"""A bounded map of monitors, created on first sight of a key and evicted least-recently-used."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, Iterator, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Registry(Generic[K, V]):
    """Keys come from the data (model names, feature names, hosts), so their number must be capped."""

    def __init__(self, factory: Callable[[K], V], max_keys: int = 10_000,
                 on_evict: Callable[[K], object] | None = None) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.factory = factory
        self.max_keys = max_keys
        self.on_evict = on_evict  # told of each key evicted, so an index kept beside the registry follows
        self._items: OrderedDict[K, V] = OrderedDict()
        self.evictions = 0

    def get(self, key: K) -> V:
        items = self._items
        item = items.get(key)
        if item is None:
            item = items[key] = self.factory(key)
            if len(items) > self.max_keys:
                self._evict_oldest()
        else:
            items.move_to_end(key)
        return item

    def put(self, key: K, item: V) -> None:
        """Install an item (a restored monitor) as the most recently used, evicting beyond ``max_keys``."""
        items = self._items
        items[key] = item
        items.move_to_end(key)
        if len(items) > self.max_keys:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        key, _ = self._items.popitem(last=False)
        self.evictions += 1
        if self.on_evict is not None:
            self.on_evict(key)

    def discard(self, key: K) -> None:
        """Drop an item that another worker now owns (not an eviction: it is not counted)."""
        self._items.pop(key, None)

    def peek(self, key: K) -> V | None:
        """The item if present, without creating it or changing the eviction order."""
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def items(self) -> Iterator[tuple[K, V]]:
        return iter(self._items.items())
