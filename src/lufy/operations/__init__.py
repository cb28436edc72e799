"""Operator actions recorded in the log (projection skips, checkpoint resets)."""
