"""Benchmarks behind ``palaute bench``: measurements that back claims in docs/."""
