"""Demo data for a fresh install (`lufy seed --demo`): an entry point, at the command-line layer,
that drives the contexts through the composition root (.importlinter)."""
