"""``python -m cvbench train ...`` is ``cvbench train ...``."""

from cvbench.cli.main import main

main()
