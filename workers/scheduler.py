"""Process entrypoint: only the leader-elected maintenance loop (job sweeper and periodic
analytics refresh), for deployments that want it apart from the projector (which runs it too;
leader election keeps one active)."""

from lufy.projections.runner import run_projector
from lufy.settings import get_settings

if __name__ == "__main__":
    run_projector(get_settings(), only_maintenance=True)
