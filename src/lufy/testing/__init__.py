"""Test and benchmark support (never imported by the application): app factories and helpers
that may use every layer, web included. Sits at the top of the import layers (.importlinter)."""
