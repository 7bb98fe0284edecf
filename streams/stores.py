"""How the worker opens its tables' local stores: RocksDB through rocksdict, small buffers.

faust opens one RocksDB database per table and partition, and its defaults
are sized for a machine given over to one large table: up to three 64 MiB
memtables and a 2 GiB block cache for each database. A worker here has
eight tables, each on every partition it owns, and restoring one large
table from its changelog (a cold start with a million pending surveys)
filled the memtables of each of its partitions before the first flush.
The store is a cache of the changelog, rebuilt from it whenever it is lost,
so smaller memtables cost only more frequent background flushes.
"""

from __future__ import annotations

from typing import Any

#: Bytes of one memtable, and how many a database keeps before writes wait for a flush.
WRITE_BUFFER_BYTES = 16 * 1024 * 1024
WRITE_BUFFERS = 2
#: Bytes of the block cache of one database (faust's default: 2 GiB).
BLOCK_CACHE_BYTES = 32 * 1024 * 1024


def table_store_options() -> dict[str, Any]:
    """Give the ``options`` of one table, a new dict each time.

    faust takes keys out of the dict it is given (``driver``), so two tables
    must never share one.
    """
    return {
        # python-rocksdb is unmaintained; rocksdict is the driver faust 0.15 supports.
        "driver": "rocksdict",
        "write_buffer_size": WRITE_BUFFER_BYTES,
        "max_write_buffer_number": WRITE_BUFFERS,
        "block_cache_size": BLOCK_CACHE_BYTES,
    }
