"""Where the dashboard's front-end packages are: installed from npm, never committed.

``web/package.json`` pins them; ``npm ci --prefix web`` (run by
``scripts/_setup.sh``) installs them into ``web/node_modules``. An installed
wheel carries the files the dashboard loads in ``touchmodel/server/vendor``
(copied there at build time by ``setup.py``, checked against
``web/package-lock.json``); a checkout serves ``web/node_modules``. The server
mounts the folder read-only under ``/static/vendor``. ``TOUCHMODEL_WEB_ASSETS``
points elsewhere (a deployment that installs them in another place).
"""

from __future__ import annotations

import os
from pathlib import Path

from touchmodel.errors import TouchmodelError

ASSETS_ENV = "TOUCHMODEL_WEB_ASSETS"
# What base.html loads, relative to node_modules.
VENDOR_FILES = ("htmx.org/dist/htmx.min.js", "chart.js/dist/chart.umd.js")


# Where a wheel's build step puts them (setup.py); absent in a checkout.
PACKAGED = Path(__file__).resolve().parent / "vendor"


def vendor_dir() -> Path:
    """The folder holding the pinned front-end packages, laid out like node_modules.

    ``$TOUCHMODEL_WEB_ASSETS`` when set, else the copy inside an installed
    wheel, else a checkout's ``web/node_modules``.
    """
    explicit = os.environ.get(ASSETS_ENV)
    if explicit:
        return Path(explicit)
    if all((PACKAGED / f).is_file() for f in VENDOR_FILES):
        return PACKAGED
    # src/touchmodel/server/assets.py -> the repository's web/node_modules
    return Path(__file__).resolve().parents[3] / "web" / "node_modules"


def check_vendor(folder: Path) -> None:
    """Fail early, naming the command that fixes it, when an asset is missing."""
    missing = [f for f in VENDOR_FILES if not (folder / f).is_file()]
    if missing:
        raise TouchmodelError(
            f"dashboard assets missing in {folder} ({', '.join(missing)}): run "
            f"`npm ci --prefix web` in the touchmodel checkout (scripts/_setup.sh does it), "
            f"reinstall a touchmodel wheel (it ships them), "
            f"or point {ASSETS_ENV} at a node_modules folder that has them"
        )
