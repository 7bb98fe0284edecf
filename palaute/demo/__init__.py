"""The local demo: a synthetic front office feeding a real broker and a real worker."""
