"""Volley's operators' terminal UI: a Textual app fed by the engine's control socket."""
