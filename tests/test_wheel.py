"""`pip install touchmodel` then `touchmodel serve`: the wheel carries the dashboard's JS.

The wheel is built from a copy of this checkout (pip's isolated build, which
takes setuptools from PyPI or pip's cache) and installed into a fresh venv.
The venv reuses the dependencies of the environment running the tests (a
.pth line, so nothing is downloaded), but touchmodel itself, its templates
and its front-end files come from the wheel only: no PYTHONPATH, no checkout
on the path, run from a folder outside the checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

import httpx

from tests.live_server import free_port
from touchmodel.server.assets import VENDOR_FILES

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = (ROOT / "web" / "node_modules").resolve()


def _checkout_copy(dest: Path) -> Path:
    """The files a wheel is built from (no build/, no egg-info, no caches)."""
    dest.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(
        ROOT / "src",
        dest / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "vendor"),
    )
    (dest / "web").mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(ROOT / "web" / name, dest / "web" / name)
    (dest / "web" / "node_modules").symlink_to(NODE_MODULES)
    return dest


def _clean_env() -> dict[str, str]:
    # The checkout must not leak in through the test run's PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TOUCHMODEL_WEB_ASSETS")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _build_wheel(tmp: Path) -> Path:
    source = _checkout_copy(tmp / "checkout")
    dist = tmp / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        capture_output=True, text=True, timeout=300, env=_clean_env(),
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("touchmodel-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         str(wheel)],
        capture_output=True, text=True, timeout=300, env=_clean_env(),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The dependencies: this environment's, appended after the venv's own site-packages.
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env_dir


def test_the_wheel_serves_the_dashboard_from_a_fresh_venv(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for rel in VENDOR_FILES:
            packed = zf.read(f"touchmodel/server/vendor/{rel}")
            assert packed == (NODE_MODULES / rel).read_bytes(), rel
        sources = json.loads(zf.read("touchmodel/server/vendor/SOURCES.json"))
        # licences travel with the code; versions and integrity are the lock file's
        assert any(n.startswith("touchmodel/server/vendor/chart.js/LICENSE") for n in names)
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())["packages"]
    for package, shipped in sources.items():
        assert shipped["integrity"] == lock[f"node_modules/{package}"]["integrity"]
    assert not any("node_modules" in n for n in names)

    env_dir = _fresh_venv(tmp_path, wheel)
    cli = env_dir / "bin" / "touchmodel"
    env, home = _clean_env(), tmp_path / "home"
    home.mkdir()
    where = subprocess.run(
        [env_dir / "bin" / "python", "-c", "import touchmodel.server.assets as a; print(a.vendor_dir())"],
        capture_output=True, text=True, cwd=home, env=env,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(env_dir)), where.stdout + where.stderr

    assert (
        subprocess.run([cli, "init", "ws"], cwd=home, env=env, capture_output=True).returncode == 0
    )
    ws = home / "ws"
    token = subprocess.run(
        [cli, "keys", "create", "--kind", "api"], cwd=ws, env=env, capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [cli, "serve", "--port", str(port), "--no-scheduler"],
        cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        with httpx.Client(base_url=url) as client:
            login = client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert login.status_code == 200 and csrf, login.text
            signed_in = client.post(
                "/login", data={"token": token, "csrf_token": csrf.group(1)}, follow_redirects=True
            )
            assert signed_in.status_code == 200 and str(signed_in.url) == url + "/"
            page = signed_in.text
            for rel in VENDOR_FILES:
                assert f"/static/vendor/{rel}" in page
                js = client.get(f"/static/vendor/{rel}")
                assert js.status_code == 200, rel
                assert js.content == (NODE_MODULES / rel).read_bytes(), rel
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "Application shutdown complete" in out, out
