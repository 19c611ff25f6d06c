"""The defaults that keep events and embed calls inside the platform's windows, and their validation."""

import pytest

from shared.config import Settings
from shared.errors import ConfigurationError

EVENTARC_RETENTION_SECONDS = 24 * 3600  # Eventarc's default message retention: it redelivers for 24 h
CLOUD_TASKS_DISPATCH_DEADLINE_SECONDS = 600  # HTTP tasks' default dispatch deadline (10 min)


def test_an_event_is_not_dropped_while_eventarc_may_still_deliver_it():
    assert Settings().max_event_age_seconds > EVENTARC_RETENTION_SECONDS


def test_the_embed_budget_leaves_most_of_the_dispatch_deadline_for_chunking_and_the_final_write():
    assert Settings().embed_time_budget_seconds <= CLOUD_TASKS_DISPATCH_DEADLINE_SECONDS / 2


@pytest.mark.parametrize(
    "env, message",
    [
        ({"MAX_EVENT_AGE_SECONDS": "10"}, "MAX_EVENT_AGE_SECONDS"),
        ({"EMBED_TIME_BUDGET_SECONDS": "0"}, "EMBED_TIME_BUDGET_SECONDS"),
        ({"EMBED_TIME_BUDGET_SECONDS": "3600"}, "EMBED_TIME_BUDGET_SECONDS"),
        ({"EMBED_MAX_CALLS": "0"}, "EMBED_MAX_CALLS"),
        ({"EMBED_MAX_STALLED_CALLS": "0"}, "EMBED_MAX_STALLED_CALLS"),
        ({"RECONCILE_MAX_DELETES": "-1"}, "RECONCILE_MAX_DELETES"),
    ],
)
def test_out_of_range_values_say_what_to_set(env, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", **env}).validate()


def test_report_only_reconciliation_and_a_tiny_budget_are_valid():
    s = Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", "RECONCILE_MAX_DELETES": "0",
                           "EMBED_TIME_BUDGET_SECONDS": "0.001"}).validate()
    assert (s.reconcile_max_deletes, s.embed_time_budget_seconds) == (0, 0.001)
