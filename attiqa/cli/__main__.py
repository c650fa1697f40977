"""``python -m attiqa.cli``."""

from attiqa.cli import main

main()
