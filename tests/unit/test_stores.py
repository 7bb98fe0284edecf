"""The tables' store options: faust's RocksDB options take them, and no two tables share them."""

from __future__ import annotations

from faust.stores.rocksdb import RocksDBOptions

from streams.stores import (
    BLOCK_CACHE_BYTES,
    WRITE_BUFFER_BYTES,
    WRITE_BUFFERS,
    table_store_options,
)


def test_faust_opens_the_stores_with_the_smaller_buffers() -> None:
    """A misspelt option would land in faust's extra options and change nothing."""
    options = table_store_options()
    assert options.pop("driver") == "rocksdict"
    opened = RocksDBOptions(**options, use_rocksdict=True)
    assert opened.write_buffer_size == WRITE_BUFFER_BYTES
    assert opened.max_write_buffer_number == WRITE_BUFFERS
    assert opened.block_cache_size == BLOCK_CACHE_BYTES
    assert opened.extra_options == {}


def test_each_table_gets_a_dict_of_its_own() -> None:
    """The driver is popped from the dict: a shared one would leave the next table without."""
    first = table_store_options()
    first.pop("driver")
    assert table_store_options()["driver"] == "rocksdict"
