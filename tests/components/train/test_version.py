"""Model versions: digits only, sorted by time, distinct for runs finishing together."""

import datetime as dt

from components.train import new_version

NOW = dt.datetime(2026, 12, 1, 21, 33, 13, tzinfo=dt.UTC)


def test_version_is_utc_time_then_a_run_derived_suffix():
    version = new_version("crypto-forecast-2026-12-01-21-33-13-000001", now=NOW)
    assert version.isdigit() and len(version) == 18
    assert version.startswith("20261201213313")
    # The same run always gets the same version for the same second.
    assert version == new_version("crypto-forecast-2026-12-01-21-33-13-000001", now=NOW)


def test_runs_finishing_in_the_same_second_get_distinct_versions():
    names = [f"crypto-forecast-2026-12-01-21-33-13-{i:06d}" for i in range(20)]
    versions = {new_version(name, now=NOW) for name in names}
    assert len(versions) == len(names)


def test_versions_sort_by_time_whatever_the_suffix():
    earlier = new_version("zzz", now=NOW)
    later = new_version("aaa", now=NOW + dt.timedelta(seconds=1))
    assert int(earlier) < int(later)
    assert int(later) < 2**63  # TF-Serving versions are int64


def test_without_a_run_name_the_suffix_is_random_digits():
    versions = {new_version(None, now=NOW) for _ in range(50)}
    assert all(v.isdigit() and len(v) == 18 for v in versions)
    assert len(versions) > 1
