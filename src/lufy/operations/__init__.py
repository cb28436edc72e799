"""Operator and maintenance actions recorded in the log (stream type `operations`): projection
rebuilds and skips (`lufy.projections`) and privacy's sealing, key rotation and retention
(`lufy.privacy`). A runtime below both of them, so either may append these events."""
