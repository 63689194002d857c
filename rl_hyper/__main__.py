"""`python -m rl_hyper` is the same as the `rl-hyper` command."""

from rl_hyper.cli import main

raise SystemExit(main())
