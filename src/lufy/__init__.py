"""Lufy: an event-sourced, analytics-first music platform backend."""
