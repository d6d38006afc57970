"""Test configuration: slow tests run only with --run-slow; Hypothesis profiles by env var."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from target.mm.world import set_world

settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.register_profile("speedy", deadline=None, max_examples=10)
# CI (CI=true, as .ci/run is run) gets the derandomized profile: the same examples every run,
# so a red CI is reproducible; HYPOTHESIS_PROFILE picks another by hand.
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "ci" if os.getenv("CI") else "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def world_cleanup() -> Iterator[None]:
    """Uninstall the world the test installed (``set_world(None)``), however it ends."""
    try:
        yield
    finally:
        set_world(None)
