"""`python -m app.cli` is the same as the `rewardsmith` command."""

from app.cli import main

main()
