"""Read models built from the log: projection base class, runner, rebuilds, operator tools."""

from lufy.projections.operations import wait_for_projection

__all__ = ["wait_for_projection"]
