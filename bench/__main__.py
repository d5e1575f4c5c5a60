"""`python -m bench <command>`."""

from bench.cli import main

raise SystemExit(main())
