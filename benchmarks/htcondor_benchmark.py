"""pypoolparty.htcondor.Pool() with default settings beside multiprocessing.Pool(2).

HTCondor never runs jobs as root: run by hand as the jobs' user, from a
scratch directory that user can write, with an interpreter that user can run
and that imports pypoolparty (the real-HTCondor tests make such a venv), e.g.
``runuser -u condoruser -- env PYTHONPATH=<checkout> <venv>/bin/python
<checkout>/benchmarks/htcondor_benchmark.py [--repeat 3]``.
Aims: 1,000 trivial tasks in under 15 s; 100 tasks sleeping 0.5 s within 1.3x
of multiprocessing.
"""

from measure import compare

if __name__ == "__main__":
    compare(["multiprocessing:2", "htcondor"])
