"""Side tools: the max-batch search (maxbatch.py) and the sweep's own speed and A/A check (selfbench.py)."""
