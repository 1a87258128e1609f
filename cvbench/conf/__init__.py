"""cvbench's config tree, shipped inside the package (Hydra's primary config directory).

The YAML files below are package data; :data:`CONF_DIR` is where they are on disk, for the
editable install (the checkout's ``cvbench/conf``) and for a wheel (``site-packages``) alike.
"""

from pathlib import Path

CONF_DIR: Path = Path(__file__).resolve().parent
