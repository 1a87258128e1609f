"""cvbench's config tree, shipped inside the package (Hydra's primary config directory).

The YAML files below are package data; :data:`CONF_DIR` is where they are on disk, for the
editable install (the checkout's ``cvbench/conf``) and for a wheel (``site-packages``) alike.
"""

from pathlib import Path

CONF_DIR: Path = Path(__file__).resolve().parent
TARGET_KEY = "_target_"
"""The key naming what Hydra builds from a node."""
CONTRACT_KEY = "contract"
"""A model or data node's ``contract:`` says what the contract tests need (input shape, output
kind, a fake writer); it describes the component and is never passed to its constructor."""
