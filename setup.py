"""Build step: the wheel carries the dashboard's pinned front-end files.

Everything else about the package is in pyproject.toml. ``web/package.json``
pins the dashboard's front-end packages and ``npm ci --prefix web`` installs
them from the npm registry into ``web/node_modules``, checking each tarball
against the sha512 that ``web/package-lock.json`` records. They are never
committed to git, so a wheel built without them could not serve the
dashboard. This step copies the files the dashboard loads (``VENDOR_FILES`` in
``src/touchmodel/server/assets.py``) and each package's licence into
``touchmodel/server/vendor/`` of the wheel, after checking every file byte for
byte against the package's tarball, which it reads from npm's cache (where
``npm ci`` left it) and hashes against the lock file's integrity. Editable
installs skip it: a checkout serves ``web/node_modules`` directly.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
ASSETS_MODULE = ROOT / "src" / "touchmodel" / "server" / "assets.py"
PACKAGED = Path("touchmodel") / "server" / "vendor"  # inside the wheel
LICENSES = ("LICENSE", "LICENSE.md", "LICENSE.txt")
FIX = "run `npm ci --prefix web` in the checkout, then build again"


class VendorError(SystemExit):
    """The front-end files cannot be shipped as locked: the message says what to do."""


def vendor_files() -> tuple[str, ...]:
    """``VENDOR_FILES`` of assets.py, read rather than imported (the build has no dependencies)."""
    for node in ast.parse(ASSETS_MODULE.read_text("utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "VENDOR_FILES" for target in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise VendorError(f"{ASSETS_MODULE}: no VENDOR_FILES")


def split_package(path: str) -> tuple[str, str]:
    """``chart.js/dist/chart.umd.js`` -> (``chart.js``, ``dist/chart.umd.js``); scopes kept."""
    parts = path.split("/")
    cut = 2 if parts[0].startswith("@") else 1
    return "/".join(parts[:cut]), "/".join(parts[cut:])


def npm_cache() -> Path:
    """npm's cache folder (``npm_config_cache`` when set, else npm's default ``~/.npm``)."""
    # npm's own spelling of its settings in the environment is lower case
    return Path(os.environ.get("npm_config_cache") or Path.home() / ".npm")  # noqa: SIM112


def locked_tarball(package: str, entry: dict[str, str]) -> tarfile.TarFile:
    """The package's tarball from npm's cache, after checking it against the lock's integrity."""
    algorithm, _, encoded = entry["integrity"].partition("-")
    digest = base64.b64decode(encoded).hex()
    path = npm_cache() / "_cacache" / "content-v2" / algorithm / digest[:2] / digest[2:4]
    path /= digest[4:]
    if not path.is_file():
        raise VendorError(
            f"{package} {entry['version']}: its locked tarball is not in npm's cache "
            f"({npm_cache()}); {FIX}"
        )
    data = path.read_bytes()
    if hashlib.new(algorithm, data).hexdigest() != digest:
        raise VendorError(f"{package}: {path} does not match web/package-lock.json; {FIX}")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def copy_vendor_files(dest: Path) -> dict[str, dict[str, object]]:
    """Copy the checked files under ``dest``; returns what was shipped, per package."""
    node_modules = WEB / "node_modules"
    if not node_modules.is_dir():
        raise VendorError(
            f"{node_modules} not found: the wheel ships the dashboard's front-end packages "
            f"from there; {FIX} (build the wheel from a checkout: pip wheel . or python -m build "
            "--wheel)"
        )
    lock = json.loads((WEB / "package-lock.json").read_text("utf-8"))["packages"]
    wanted: dict[str, list[str]] = {}
    for path in vendor_files():
        package, inner = split_package(path)
        wanted.setdefault(package, []).append(inner)
    shipped: dict[str, dict[str, object]] = {}
    for package, inner_paths in wanted.items():
        entry = lock.get(f"node_modules/{package}")
        if entry is None:
            raise VendorError(
                f"{package}: not in web/package-lock.json; pin it in web/package.json"
            )
        source = node_modules / package
        inner_paths += [name for name in LICENSES if (source / name).is_file()]
        with locked_tarball(package, entry) as tar:
            for inner in inner_paths:
                file = source / inner
                if not file.is_file():
                    raise VendorError(f"{file} missing; {FIX}")
                member = tar.extractfile(f"package/{inner}")
                if member is None or member.read() != file.read_bytes():
                    raise VendorError(
                        f"{file} differs from {package} {entry['version']} as locked; {FIX}"
                    )
                target = dest / package / inner
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
        shipped[package] = {
            "version": entry["version"],
            "integrity": entry["integrity"],
            "files": sorted(inner_paths),
        }
    return shipped


class BuildWithVendorFiles(build_py):
    """``build_py`` plus the dashboard's front-end files (not for editable installs)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / PACKAGED
        shutil.rmtree(dest, ignore_errors=True)
        shipped = copy_vendor_files(dest)
        (dest / "SOURCES.json").write_text(json.dumps(shipped, indent=2) + "\n", "utf-8")


setup(cmdclass={"build_py": BuildWithVendorFiles})
