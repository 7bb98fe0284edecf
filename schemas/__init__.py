"""Event contracts: pydantic v2 models of every event, topic names, exports.

Front-office systems code against these models (or the JSON Schema and
AsyncAPI documents exported from them), so they change only by adding a new
version. No I/O happens here.
"""
