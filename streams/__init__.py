"""The faust-streaming application: agents, tables, timers and topic wiring."""
