"""Local processes: the executor that schedules units on worker slots, and the reaper every worker runs under (orphans.py), so nothing a sweep starts outlives it."""
