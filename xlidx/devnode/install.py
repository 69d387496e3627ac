"""Install the dev node: unpack the distribution, assemble modules, install plugins.

Idempotent: a finished install leaves ``.xlidx-installed`` with the artifact pins it was
built from, and a later call with the same pins does nothing.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

from xlidx.devnode.artifacts import (
    DISTRIBUTION,
    MODULES,
    OPENSEARCH_VERSION,
    PLUGINS,
    Module,
    all_artifacts,
    fetch,
)
from xlidx.devnode.paths import NODE_USER, DevPaths
from xlidx.errors import DevNodeError

MARKER = ".xlidx-installed"
MIN_JAVA = 11


def find_java_home(env: dict[str, str] | None = None) -> Path:
    """A Java 11+ home: OPENSEARCH_JAVA_HOME, JAVA_HOME, or the ``java`` on PATH."""
    env = dict(os.environ) if env is None else env
    candidates: list[Path] = []
    for var in ("OPENSEARCH_JAVA_HOME", "JAVA_HOME"):
        if env.get(var):
            candidates.append(Path(env[var]))
    java = shutil.which("java")
    if java:
        candidates.append(Path(java).resolve().parent.parent)
    for home in candidates:
        if (home / "bin" / "java").is_file():
            return home
    raise DevNodeError(
        "no Java runtime found: install Java 11 or newer "
        "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    )


def descriptor(module: Module) -> str:
    """``plugin-descriptor.properties`` for an assembled module (pure)."""
    return "\n".join(
        [
            f"description={module.description}",
            f"version={OPENSEARCH_VERSION}",
            f"name={module.name}",
            f"classname={module.classname}",
            "java.version=11",
            f"opensearch.version={OPENSEARCH_VERSION}",
            "custom.foldername=",
            f"extended.plugins={','.join(module.extended_plugins)}",
            "has.native.controller=false",
            "",
        ]
    )


def install_fingerprint() -> str:
    return json.dumps(sorted(a.coordinates + "@" + str(a.sha256) for a in all_artifacts()))


def is_installed(paths: DevPaths) -> bool:
    marker = paths.install_dir / MARKER
    return marker.is_file() and marker.read_text() == install_fingerprint()


def _unpack(zip_path: Path, dest_parent: Path) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = (dest_parent / info.filename).resolve()
            if not str(target).startswith(str(dest_parent.resolve())):
                raise DevNodeError(f"{zip_path.name}: refusing to unpack {info.filename!r}")
        zf.extractall(dest_parent)
        # zipfile drops the executable bits; restore them from the archive's unix mode
        for info in zf.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(dest_parent / info.filename, mode)


def _run_plugin_tool(install_dir: Path, java_home: Path, zip_path: Path) -> None:
    env = {**os.environ, "OPENSEARCH_JAVA_HOME": str(java_home), "JAVA_HOME": str(java_home)}
    proc = subprocess.run(
        [str(install_dir / "bin" / "opensearch-plugin"), "install", "--batch", zip_path.as_uri()],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        raise DevNodeError(f"installing {zip_path.name} failed: {' | '.join(lines[-3:])}")


def chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def ensure_node_user() -> str:
    """The unprivileged user that runs the node when xlidx runs as root (created if missing)."""
    try:
        pwd.getpwnam(NODE_USER)
    except KeyError:
        proc = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", NODE_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise DevNodeError(
                f"OpenSearch cannot run as root and creating user {NODE_USER!r} failed: "
                f"{proc.stderr.strip()}"
            ) from None
    return NODE_USER


def install(paths: DevPaths, *, log: Callable[[str], None] = lambda _m: None) -> Path:
    """Make sure a complete node is installed under ``paths.install_dir``; return it."""
    if is_installed(paths):
        return paths.install_dir
    java_home = find_java_home()
    dist = fetch(DISTRIBUTION, paths.downloads, log=log)
    plugins = [fetch(p, paths.downloads, log=log) for p in PLUGINS]
    module_jars = {m.name: [fetch(j, paths.downloads, log=log) for j in m.jars] for m in MODULES}

    paths.node_dir.mkdir(parents=True, exist_ok=True)
    staging = paths.node_dir / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        log(f"unpacking {dist.name}")
        _unpack(dist, staging)
        home = staging / f"opensearch-{OPENSEARCH_VERSION}"
        for module in MODULES:
            mdir = home / "modules" / module.name
            mdir.mkdir(parents=True, exist_ok=True)
            for jar in module_jars[module.name]:
                shutil.copy2(jar, mdir / jar.name)
            (mdir / "plugin-descriptor.properties").write_text(descriptor(module))
            if module.security_policy:
                (mdir / "plugin-security.policy").write_text(module.security_policy)
        for plugin in plugins:
            log(f"installing plugin {plugin.name}")
            _run_plugin_tool(home, java_home, plugin)
        (home / MARKER).write_text(install_fingerprint())
        shutil.rmtree(paths.install_dir, ignore_errors=True)
        home.rename(paths.install_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths.install_dir
