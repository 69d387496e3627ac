"""Install a dev node: unpack the distribution, assemble modules, install plugins.

OpenSearch gets its modules assembled and its plugins installed (and ml-commons after them,
into an install of its own, when ``paths.ml``); Elasticsearch is its distribution unpacked,
nothing more. Idempotent: a finished install leaves ``.xlidx-installed`` with the artifact
pins it was built from, and a later call with the same pins does nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

from xlidx.config import child_env, env_values
from xlidx.devnode.artifacts import (
    DISTRIBUTION,
    ML_MODULES,
    ML_PLUGIN,
    MODULES,
    OPENSEARCH_VERSION,
    PLUGINS,
    Artifact,
    Module,
    all_artifacts,
    es_artifacts,
    fetch,
    ml_artifacts,
)
from xlidx.devnode.engines import engine_spec
from xlidx.devnode.paths import NODE_USER, DevPaths
from xlidx.errors import DevNodeError

MARKER = ".xlidx-installed"
MIN_JAVA = 11


def java_major(home: Path) -> int | None:
    """The feature version of the Java in ``home`` from its ``release`` file (8 for 1.8);
    ``None`` when the file is missing or unreadable."""
    try:
        text = (home / "release").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("JAVA_VERSION="):
            parts = line.split("=", 1)[1].strip().strip('"').split(".")
            head = parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0]
            digits = "".join(ch for ch in head if ch.isdigit())
            return int(digits) if digits else None
    return None


def find_java_home(env: dict[str, str] | None = None, engine: str = "opensearch") -> Path:
    """A Java home new enough for ``engine`` (11 for OpenSearch, 17 for Elasticsearch):
    the engine's own variable (OPENSEARCH_JAVA_HOME, ES_JAVA_HOME), JAVA_HOME, or the
    ``java`` on PATH. A home whose ``release`` file names an older Java is passed over."""
    spec = engine_spec(engine)
    found_vars = env_values(tuple(spec.java_home_vars), env)
    candidates: list[Path] = [Path(found_vars[v]) for v in spec.java_home_vars if v in found_vars]
    java = shutil.which("java")
    if java:
        candidates.append(Path(java).resolve().parent.parent)
    too_old: list[str] = []
    for home in candidates:
        if (home / "bin" / "java").is_file():
            major = java_major(home)
            if major is not None and major < spec.min_java:
                too_old.append(f"{home} is Java {major}")
                continue
            return home
    found = f" ({'; '.join(too_old)})" if too_old else ""
    raise DevNodeError(
        f"no Java {spec.min_java} or newer found for {spec.display}{found}: install one "
        f"(Debian: apt-get install openjdk-17-jre-headless) or set {spec.java_home_vars[0]}"
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


def engine_artifacts(engine: str = "opensearch", *, ml: bool = False) -> list[Artifact]:
    """Every artifact the ``engine`` dev node (``ml``: with ml-commons) is built from."""
    if engine_spec(engine).name == "elasticsearch":
        return es_artifacts()
    return ml_artifacts() if ml else all_artifacts()


def install_fingerprint(engine: str = "opensearch", *, ml: bool = False) -> str:
    arts = engine_artifacts(engine, ml=ml)
    return json.dumps(sorted(a.coordinates + "@" + str(a.sha256) for a in arts))


def is_installed(paths: DevPaths) -> bool:
    marker = paths.install_dir / MARKER
    return marker.is_file() and marker.read_text() == install_fingerprint(paths.engine, ml=paths.ml)


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
    env = {**child_env(), "OPENSEARCH_JAVA_HOME": str(java_home), "JAVA_HOME": str(java_home)}
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
    """``path`` and everything in it to ``user``. What vanishes meanwhile is passed over: the
    tree may hold another install's staging directory, unpacked and removed as this walks."""
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        with contextlib.suppress(FileNotFoundError):
            os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def chown_tree_top(path: Path, user: str) -> None:
    """``path`` itself (not what is in it) to ``user``."""
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def ensure_node_user(engine: str = "opensearch") -> str:
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
                f"{engine_spec(engine).display} cannot run as root and creating user "
                f"{NODE_USER!r} failed: "
                f"{proc.stderr.strip()}"
            ) from None
    return NODE_USER


def extra_plugins(paths: DevPaths) -> tuple[Artifact, ...]:
    """The plugins installed after :data:`PLUGINS`: ml-commons for ``paths.ml`` (pure)."""
    return (ML_PLUGIN,) if paths.ml else ()


def install(paths: DevPaths, *, log: Callable[[str], None] = lambda _m: None) -> Path:
    """Make sure a complete node is installed under ``paths.install_dir``; return it."""
    if is_installed(paths):
        return paths.install_dir
    if paths.engine == "elasticsearch":
        return _install_elasticsearch(paths, log=log)
    java_home = find_java_home()
    dist = fetch(DISTRIBUTION, paths.downloads, log=log)
    # ml-commons extends job-scheduler, the first of PLUGINS: it is installed last
    plugins = [fetch(p, paths.downloads, log=log) for p in (*PLUGINS, *extra_plugins(paths))]
    modules = (*MODULES, *ML_MODULES) if paths.ml else MODULES
    module_jars = {m.name: [fetch(j, paths.downloads, log=log) for j in m.jars] for m in modules}

    paths.node_dir.mkdir(parents=True, exist_ok=True)
    staging = paths.node_dir / f".staging-{'ml-' if paths.ml else ''}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        log(f"unpacking {dist.name}")
        _unpack(dist, staging)
        home = staging / f"opensearch-{OPENSEARCH_VERSION}"
        for module in modules:
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
        (home / MARKER).write_text(install_fingerprint(ml=paths.ml))
        shutil.rmtree(paths.install_dir, ignore_errors=True)
        home.rename(paths.install_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths.install_dir


def _install_elasticsearch(paths: DevPaths, *, log: Callable[[str], None]) -> Path:
    """Unpack the verified integ-test-zip; it needs no plugin (and has no plugin to add)."""
    spec = paths.spec
    find_java_home(engine=spec.name)  # fail before a 97 MB download, not after it
    dist = fetch(spec.distribution, paths.downloads, log=log)
    paths.node_dir.mkdir(parents=True, exist_ok=True)
    staging = paths.node_dir / f".staging-{spec.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        log(f"unpacking {dist.name}")
        _unpack(dist, staging)
        home = staging / spec.install_name
        if not (home / spec.launcher).is_file():
            raise DevNodeError(f"{dist.name} has no {spec.install_name}/{spec.launcher}")
        (home / MARKER).write_text(install_fingerprint(spec.name))
        shutil.rmtree(paths.install_dir, ignore_errors=True)
        home.rename(paths.install_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths.install_dir
