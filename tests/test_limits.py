"""What `flowserve serve` does for max_concurrent_runs: the open files limit, the warnings."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from flowserve.limits import (
    MAX_OPEN_FILES,
    open_files_needed,
    raise_open_files_limit,
    serving_warnings,
    soft_limit_to_ask,
)
from flowserve.settings import Settings


@pytest.fixture
def restored_nofile() -> Iterator[tuple[int, int]]:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield before
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_defaults_hold_thousands_of_runs_with_pools_to_match() -> None:
    settings = Settings()
    assert settings.max_concurrent_runs == 4096
    assert settings.backlog == 4096
    # 0 = as many model calls and outbound connections as runs.
    assert settings.provider_pool_size == settings.http_pool_size == 0
    assert settings.provider_pool_limit == settings.http_pool_limit == 4096
    assert (settings.provider_pool_timeout, settings.http_pool_timeout) == (10.0, 10.0)
    assert (settings.redis_pool_size, settings.redis_pool_timeout) == (256, 5.0)
    assert (settings.database_pool_size, settings.database_pool_timeout) == (20, 10.0)


def test_pool_sizes_follow_max_concurrent_runs_unless_set() -> None:
    settings = Settings.from_mapping(
        {"FLOWSERVE_MAX_CONCURRENT_RUNS": "300", "FLOWSERVE_HTTP_POOL_SIZE": "50"}
    )
    assert settings.provider_pool_limit == 300
    assert settings.http_pool_limit == 50


@pytest.mark.parametrize(
    "name", ["FLOWSERVE_PROVIDER_POOL_TIMEOUT", "FLOWSERVE_REDIS_POOL_TIMEOUT", "FLOWSERVE_BACKLOG"]
)
def test_a_pool_wait_or_backlog_of_zero_is_refused(name: str) -> None:
    with pytest.raises(Exception, match=name):
        Settings.from_mapping({name: "0"})


@pytest.mark.parametrize(
    ("soft", "hard", "asked"),
    [
        (1024, 524288, 524288),  # up to the hard limit
        (1024, -1, MAX_OPEN_FILES),  # unlimited: capped
        (1024, 4_000_000, MAX_OPEN_FILES),
        (2_000_000, 4_000_000, 2_000_000),  # never lowered
        (4096, 4096, 4096),
    ],
)
def test_the_soft_limit_asked_for_is_the_hard_one_capped(soft: int, hard: int, asked: int) -> None:
    assert soft_limit_to_ask(soft, hard) == asked


def test_serving_raises_this_process_soft_limit_to_the_hard_one(
    restored_nofile: tuple[int, int],
) -> None:
    _, hard = restored_nofile
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip("the hard limit leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    now = raise_open_files_limit()
    expected = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    assert now == expected
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == now


def test_a_low_open_files_limit_is_warned_about_with_what_is_needed() -> None:
    settings = Settings(max_concurrent_runs=4096)
    assert open_files_needed(settings) == 3 * 4096 + 256
    [(event, fields)] = serving_warnings(settings, 1024)
    assert event == "open_files_limit_low"
    assert fields["needed"] == 12544
    assert "FLOWSERVE_MAX_CONCURRENT_RUNS=4096" in str(fields["detail"])
    assert serving_warnings(settings, 12544) == []
    assert serving_warnings(settings, -1) == []  # unlimited


def test_a_pool_smaller_than_the_runs_is_warned_about() -> None:
    settings = Settings(max_concurrent_runs=2000, provider_pool_size=100)
    [(event, fields)] = serving_warnings(settings, MAX_OPEN_FILES)
    assert event == "pool_smaller_than_runs"
    assert fields["pool"] == "provider_pool_size"
    assert "FLOWSERVE_PROVIDER_POOL_SIZE=100" in str(fields["detail"])
    # Redis and PostgreSQL connections serve a command, not a run: smaller pools are fine.
    assert serving_warnings(Settings(redis_pool_size=8, database_pool_size=4), MAX_OPEN_FILES) == []
