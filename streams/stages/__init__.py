"""The stages of the stream runtime, each a pure handler (see streams.runtime)."""
