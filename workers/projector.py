"""Process entrypoint: the projection daemon (same as `lufy projector`)."""

from lufy.projections.runner import run_projector
from lufy.settings import get_settings

if __name__ == "__main__":
    run_projector(get_settings())
