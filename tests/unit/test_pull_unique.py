"""The unique index named by a load's error, in the two forms PostgreSQL 16 gives it: a row
refused by the index (the load of a small table), and the index built after a big table's rows
(devkit/backup/load.py). Both messages as tests/integration/test_backup.py's
test_duplicates_in_a_big_or_small_table_change_nothing_and_name_the_index receives them."""

import pytest

from devkit.pull.run import unique_index

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "cause",
    [
        'restore failed, nothing was changed: duplicate key value violates unique constraint "people_email_key"',
        'restore failed, nothing was changed: could not create unique index "people_email_key"',
    ],
)
def test_the_index_is_named_either_way(cause):
    assert unique_index(cause) == "people_email_key"


def test_another_failure_names_no_index():
    assert unique_index('restore failed, nothing was changed: null value in column "id"') is None
