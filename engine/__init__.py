"""The functional core: policy, send times, reply parsing, metrics, detection.

Everything here is a pure function or a small class over values. No I/O, no
Kafka, no clock reads: the caller passes ``now``. A test enforces the imports.
"""
