"""pypoolparty.htcondor.Pool() with default settings beside multiprocessing.Pool(2).

Run by hand from a scratch directory:
``PYTHONPATH=<checkout> python <checkout>/benchmarks/htcondor_benchmark.py
[--repeat 3]``. HTCondor never runs jobs as root: run as root, the htcondor
case runs as the jobs' user with the venv the real-HTCondor tests make (see
``measure.py``); run as another user, it runs as that user.
Aims: 1,000 trivial tasks in under 15 s; 100 tasks sleeping 0.5 s within 1.3x
of multiprocessing.
"""

from measure import compare

if __name__ == "__main__":
    compare(["multiprocessing:2", "htcondor"])
