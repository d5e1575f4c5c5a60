"""Statistics over result rows, and their rendering: verdicts between two runs, the one deploy/train
speedup, the baseline of each hardware, the false-alarm estimate, and the one table writer.

Reads rows through `bench.results`; never imports torch.
"""
