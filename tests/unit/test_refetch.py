"""When the guard reads a stream partition again: records fetched and never handed to an agent."""

from __future__ import annotations

from faust.types import TP

from streams.runtime.overrides.refetch import PartitionView, partitions_to_refetch

CONTACTS = TP("palaute.contacts.v1", 0)
RATINGS = TP("palaute.ratings.v1", 1)


def _view(
    *,
    highwater: int | None = 28,
    position: int | None = 28,
    read: int | None = None,
    committed: int | None = None,
    fetched_waiting: bool = False,
) -> PartitionView:
    return PartitionView(highwater, position, read, committed, fetched_waiting)


def test_records_fetched_to_the_end_and_never_read_are_lost() -> None:
    assert _view(read=None, committed=None).lost
    assert _view(read=19, committed=20).lost  # read from the seek, 20..27 never came


def test_records_read_and_never_acknowledged_are_lost() -> None:
    # Judged with no record waiting for an agent: what was read and not committed was dropped.
    assert _view(read=27, committed=20).lost


def test_a_partition_processed_to_its_end_is_not_lost() -> None:
    assert not _view(read=27, committed=28).lost
    assert not _view(read=None, committed=28).lost  # sought to its end, nothing new


def test_a_partition_still_being_fetched_or_handed_over_is_not_lost() -> None:
    assert not _view(position=21, read=19, committed=20).lost
    assert not _view(read=19, committed=20, fetched_waiting=True).lost


def test_an_empty_or_unknown_partition_is_not_lost() -> None:
    assert not _view(highwater=0, position=0).lost
    assert not _view(highwater=None).lost
    assert not _view(position=None).lost


def test_only_a_partition_lost_at_two_looks_in_the_same_state_is_read_again() -> None:
    lost = _view(read=19, committed=20)
    fine = _view(read=27, committed=28)
    assert partitions_to_refetch({CONTACTS: lost, RATINGS: fine}, {}) == []
    assert partitions_to_refetch({CONTACTS: lost, RATINGS: fine}, {CONTACTS: lost}) == [CONTACTS]
    moved = _view(read=19, committed=21)
    assert partitions_to_refetch({CONTACTS: moved}, {CONTACTS: lost}) == []
