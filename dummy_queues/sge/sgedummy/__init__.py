"""The dummy Grid Engine behind dummy_queues/sge/qsub, qstat and qdel (standard library only)."""
