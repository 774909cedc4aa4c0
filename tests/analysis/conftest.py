"""Fixtures for the analysis tests: the made-up store rows of the results tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.attack_workers.conftest import example_row
from tests.attack_workers.results.conftest import write_plain_and_vda


@pytest.fixture()
def make_row() -> Any:
    return example_row


@pytest.fixture()
def plain_and_vda() -> Any:
    return write_plain_and_vda
