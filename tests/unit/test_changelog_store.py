"""The plain runtime's state store: what a stage reads, and when a write becomes readable."""

from __future__ import annotations

import orjson

from streams.runtime.kafka_plain.store import ChangelogStore, changelog_topic


def test_the_changelog_is_the_one_faust_named_for_the_table() -> None:
    """Another name would start every citizen's history empty after the move off faust."""
    assert changelog_topic("palaute", "citizen-history") == "palaute-citizen-history-changelog"


def test_a_write_is_read_only_once_its_changelog_record_is_acknowledged() -> None:
    """A refused changelog write must leave the store as it was, so the batch is redone from it."""
    store = ChangelogStore("t-changelog")
    key, value = store.changelog_record("citizen-1", '{"decided": ["e-1"]}')
    assert orjson.loads(key) == "citizen-1"
    assert orjson.loads(value or b"null") == '{"decided": ["e-1"]}'
    store.at(2)
    assert store.get("citizen-1") is None
    store.apply(2, "citizen-1", '{"decided": ["e-1"]}', offset=7)
    assert store.get("citizen-1") == '{"decided": ["e-1"]}'


def test_a_key_is_looked_up_in_the_partition_of_the_record_being_handled() -> None:
    """State is partitioned as the input: a stale copy in another partition is never read."""
    store = ChangelogStore("t-changelog")
    store.apply(0, "k", "in-0", offset=0)
    store.apply(1, "k", "in-1", offset=0)
    store.at(1)
    assert store.get("k") == "in-1"
    store.at(0)
    assert store.get("k") == "in-0"


def test_a_deletion_and_a_partition_given_up_are_forgotten() -> None:
    """A tombstone deletes; a partition now another worker's must not answer from here."""
    store = ChangelogStore("t-changelog")
    store.apply(0, "gone", "x", offset=0)
    store.apply(0, "gone", None, offset=1)
    store.apply(3, "kept", "y", offset=0)
    store.at(0)
    assert store.get("gone") is None
    store.keep_only([0])
    store.at(3)
    assert store.get("kept") is None
    assert store.changelog_record("gone", None)[1] is None
