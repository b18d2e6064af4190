"""Integration tests talk to a real Kafka (fixtures in tests/conftest.py) and are marked as such."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Hooks in a nested conftest still see every collected item, so only tag the ones in this folder.
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)
