"""Process entrypoint: dramatiq workers for every queue (same as `lufy worker`)."""

import sys

from lufy.jobs.worker import run_worker

if __name__ == "__main__":
    sys.exit(run_worker(processes=1, threads=4))
