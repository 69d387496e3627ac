"""What the dev nodes are made of, and fetching them from Maven Central with checksums verified.

Maven Central has OpenSearch's ``integ-test-zip`` (a minimal distribution: core plus the
netty transport) and the k-NN, neural-search and job-scheduler plugin zips. It has *no*
module zips, only their jars, so the two modules those plugins need (``lang-painless``,
which k-NN extends, and ``analysis-common``, which holds the language analyzers) are
assembled from their jars (see :mod:`xlidx.devnode.install`).

2.19.1 is the newest 2.19.x for which Maven Central has k-NN and neural-search zips
(2.19.2 and later are missing there). ml-commons (:data:`ML_PLUGIN`, 363 MB) is not in the
plain dev node: neural-search's hybrid query and normalization processor do not need it. It
goes into a separate install for ``xlidx dev up --with-ml`` (:mod:`xlidx.devnode.ml`).

Each artifact is fetched with ``mvn dependency:get`` when ``mvn`` is on PATH (so the
machine's Maven settings, mirrors and proxies apply), into a private local repository under
the cache, else over plain HTTPS from Maven Central. Either way the file must match the
SHA-1 that Central publishes beside it, where it publishes one (neural-search,
job-scheduler and ml-commons publish none), the SHA-256 pinned below, always, and the size
where one is pinned (ml-commons: a truncated 363 MB download fails fast, before hashing).
A verified copy already in the cache is used, whichever way it came (Maven's repository
layout under ``m2/`` or a plain file); when ``mvn`` fails (ml-commons publishes no POM
either) the HTTPS path is tried before giving up.

Elasticsearch's ``integ-test-zip`` is on Maven Central too (97 MB; Central publishes its
``.sha1``, ``.sha256``, ``.sha512``, ``.md5`` and ``.asc``; the pin below equals the published
SHA-256). It has no bundled JDK and only four modules (``transport-netty4``, ``apm``,
``x-pack-core``, ``x-pack-security``): no ``analysis-common`` (so no language analyzers) and
no ``x-pack-rank-rrf`` (so no ``rrf`` retriever), and no plugins are added to it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xlidx.errors import ArtifactError

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
OPENSEARCH_VERSION = "2.19.1"
PLUGIN_VERSION = f"{OPENSEARCH_VERSION}.0"
ELASTICSEARCH_VERSION = "8.19.0"


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    packaging: str
    sha256: str | None = None
    size: int | None = None  # bytes; checked before the (slower) SHA-256

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:{self.packaging}"

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.{self.packaging}"

    @property
    def url(self) -> str:
        return f"{MAVEN_CENTRAL}/{self.path}"

    @property
    def path(self) -> str:
        """Path of the file inside a Maven repository."""
        group = self.group.replace(".", "/")
        return f"{group}/{self.artifact}/{self.version}/{self.filename}"


DISTRIBUTION = Artifact(
    "org.opensearch.distribution.integ-test-zip",
    "opensearch",
    OPENSEARCH_VERSION,
    "zip",
    "af7152d8b7f6f1cee09d47276b32b70479fe6dd8cdbb61213f84eb7f8098b261",
)

ES_DISTRIBUTION = Artifact(
    "org.elasticsearch.distribution.integ-test-zip",
    "elasticsearch",
    ELASTICSEARCH_VERSION,
    "zip",
    "14833b2d86c30656901f92049f81fb5777a8e4545413c8656cd1a21b55173033",
)

# installed in this order with `opensearch-plugin install --batch`
PLUGINS: tuple[Artifact, ...] = (
    Artifact(
        "org.opensearch.plugin",
        "opensearch-job-scheduler",
        PLUGIN_VERSION,
        "zip",
        "a54e12582b88a4c173d6e58b16fbc609df12a04eff010ae30396905a1a882bf6",
    ),
    Artifact(
        "org.opensearch.plugin",
        "opensearch-knn",
        PLUGIN_VERSION,
        "zip",
        "eab8c9818865bc035212eab5068cdacae164baa09d4c152f49b736d6f6b0e85c",
    ),
    Artifact(
        "org.opensearch.plugin",
        "neural-search",
        PLUGIN_VERSION,
        "zip",
        "b17ca1d774692902c58cbae102bf463970740c31d81446866e8eabd336e285aa",
    ),
)


@dataclass(frozen=True)
class Module:
    """A module of the full distribution, assembled from jars on Maven Central."""

    name: str
    classname: str
    description: str
    jars: tuple[Artifact, ...]
    extended_plugins: tuple[str, ...] = ()
    security_policy: str | None = None


def _jar(group: str, artifact: str, version: str, sha256: str) -> Artifact:
    return Artifact(group, artifact, version, "jar", sha256)


# ml-commons, for `xlidx dev up --with-ml` only: its descriptor extends
# opensearch-job-scheduler (installed before it). Central publishes no POM and no checksum
# files for it: the size and SHA-256 below are the whole check.
ML_PLUGIN = Artifact(
    "org.opensearch.plugin",
    "opensearch-ml-plugin",
    PLUGIN_VERSION,
    "zip",
    "2324234d81109dcb2c488da5a6b2034cc0f78d9d08e40ce49ba59fc423a5df5f",
    size=362_924_991,
)

MODULES: tuple[Module, ...] = (
    Module(
        name="lang-painless",
        classname="org.opensearch.painless.PainlessPlugin",
        description="An easy, safe and fast scripting language for OpenSearch",
        jars=(
            _jar(
                "org.opensearch.plugin",
                "lang-painless",
                OPENSEARCH_VERSION,
                "3cf5e02efa40ff5b88e74e1ab66a0bc462de3509fab4a6a4ffe90b8d13777a9a",
            ),
            _jar(
                "org.opensearch.plugin",
                "opensearch-scripting-painless-spi",
                OPENSEARCH_VERSION,
                "c2598797a5f6f897ce7e8d05f593ff96de3fbc56c52f299d63cddcae41556dda",
            ),
            _jar(
                "org.antlr",
                "antlr4-runtime",
                "4.13.1",
                "54665d2838cc66458343468efc539e454fc95b46a8a04b13c6ac43fc9be63505",
            ),
            _jar(
                "org.ow2.asm",
                "asm",
                "9.7",
                "adf46d5e34940bdf148ecdd26a9ee8eea94496a72034ff7141066b3eea5c4e9d",
            ),
            _jar(
                "org.ow2.asm",
                "asm-analysis",
                "9.7",
                "7bc6bcbc21379948a0c8c467fb0f864206e5b818f6bc0b546872f5c9f941556f",
            ),
            _jar(
                "org.ow2.asm",
                "asm-commons",
                "9.7",
                "389bc247958e049fc9a0408d398c92c6d370c18035120395d4cba1d9d9304b7a",
            ),
            _jar(
                "org.ow2.asm",
                "asm-tree",
                "9.7",
                "62f4b3bc436045c1acb5c3ba2d8ec556ec3369093d7f5d06c747eb04b56d52b1",
            ),
            _jar(
                "org.ow2.asm",
                "asm-util",
                "9.7",
                "37a6414d36641973f1af104937c95d6d921b2ddb4d612c66c5a9f2b13fc14211",
            ),
        ),
        security_policy=(
            "grant {\n"
            '  permission java.lang.RuntimePermission "createClassLoader";\n'
            '  permission java.lang.RuntimePermission "getClassLoader";\n'
            "};\n"
        ),
    ),
    Module(
        name="analysis-common",
        classname="org.opensearch.analysis.common.CommonAnalysisPlugin",
        description='Adds "built in" analyzers to OpenSearch.',
        jars=(
            _jar(
                "org.opensearch.plugin",
                "analysis-common",
                OPENSEARCH_VERSION,
                "13fdc1071af42946b13153a62491a5e9b0ad214d44f7c8153d3afef60f558821",
            ),
        ),
        extended_plugins=("lang-painless",),
    ),
)


def all_artifacts() -> list[Artifact]:
    """Everything the OpenSearch dev node is built from (its install fingerprint)."""
    return [DISTRIBUTION, *PLUGINS, *(j for m in MODULES for j in m.jars)]


# Two more modules for the ``--with-ml`` node, assembled from their jars like those above:
# the ingest pipeline of `xlidx connect` needs ingest-common's ``script``, ``set`` and
# ``remove`` processors, and lang-mustache for ``{{_ingest.on_failure_message}}`` (the
# integ-test distribution has neither: only ml-commons' and neural-search's processors).
ML_MODULES: tuple[Module, ...] = (
    Module(
        name="ingest-common",
        classname="org.opensearch.ingest.common.IngestCommonPlugin",
        description="Module for ingest processors that do not require additional security "
        "permissions or have large dependencies and resources",
        jars=(
            _jar(
                "org.opensearch.plugin",
                "ingest-common",
                OPENSEARCH_VERSION,
                "8baa5b133f3693265555fb6467deb105877d329e42d2c6a2d496239b8e406461",
            ),
            _jar(
                "org.opensearch",
                "opensearch-grok",
                OPENSEARCH_VERSION,
                "33f7fb192c89ebdea39184f73a3edcab00419cac5e6c53c6f48d9028ac0e8647",
            ),
            _jar(
                "org.opensearch",
                "opensearch-dissect",
                OPENSEARCH_VERSION,
                "25cf8949ac696c389119fe6dd2039241f522abdd46955108f86952f99fced68d",
            ),
            _jar(
                "org.jruby.joni",
                "joni",
                "2.2.1",
                "b3e4b657a3ed1d8f684114f6baa462d553a5932a865c1574695498dda8577748",
            ),
            _jar(
                "org.jruby.jcodings",
                "jcodings",
                "1.0.61",
                "3238c68a2f86cec53cc184ad26df8352db87bb22a419bd17fb4acdfbb0bc40f0",
            ),
        ),
        extended_plugins=("lang-painless",),
    ),
    Module(
        name="lang-mustache",
        classname="org.opensearch.script.mustache.MustachePlugin",
        description="Mustache scripting integration for OpenSearch",
        jars=(
            _jar(
                "org.opensearch.plugin",
                "lang-mustache-client",
                OPENSEARCH_VERSION,
                "3d688c8d05e517ddad94e439c61183b642aa1784daf7a4d76964d518f6c17135",
            ),
            _jar(
                "com.github.spullara.mustache.java",
                "compiler",
                "0.9.14",
                "99a7e7855609135006f078e6de7ee69daad9c42f98e679d56f80653cb17526b9",
            ),
        ),
        security_policy=(
            "grant {\n"
            '  permission java.lang.reflect.ReflectPermission "suppressAccessChecks";\n'
            '  permission java.lang.RuntimePermission "accessDeclaredMembers";\n'
            "};\n"
        ),
    ),
)


def ml_artifacts() -> list[Artifact]:
    """Everything the ``--with-ml`` OpenSearch dev node is built from: the plain node's
    artifacts, ml-commons and the modules its ingest pipelines need."""
    return [*all_artifacts(), ML_PLUGIN, *(j for m in ML_MODULES for j in m.jars)]


def es_artifacts() -> list[Artifact]:
    """Everything the Elasticsearch dev node is built from: the distribution alone."""
    return [ES_DISTRIBUTION]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha1_of(path: Path) -> str:
    h = hashlib.sha1()  # noqa: S324 - Maven Central publishes SHA-1; compared, not trusted alone
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, art: Artifact, published_sha1: str | None = None) -> None:
    """Raise :class:`ArtifactError` unless ``path`` matches the pinned size, the published
    SHA-1 and the pinned SHA-256."""
    if art.size is not None:
        got_size = path.stat().st_size
        if got_size != art.size:
            raise ArtifactError(
                f"{art.filename}: {got_size} bytes, not the pinned {art.size} "
                "(a truncated or different file)"
            )
    if published_sha1 is not None:
        expected = published_sha1.strip().split()[0].lower() if published_sha1.strip() else ""
        got = sha1_of(path)
        if got != expected:
            raise ArtifactError(
                f"{art.filename}: SHA-1 {got} does not match the published {expected or '(empty)'}"
            )
    if art.sha256 is not None:
        got = sha256_of(path)
        if got != art.sha256:
            raise ArtifactError(
                f"{art.filename}: SHA-256 {got} does not match the pinned {art.sha256}"
            )


def _fetch_with_mvn(mvn: str, art: Artifact, repo: Path) -> tuple[Path, str | None]:
    """``mvn dependency:get`` into a private local repository; returns the file and the
    published SHA-1 that Maven stored beside it (``None`` when Central publishes none)."""
    cmd = [
        mvn,
        "-B",
        "-q",
        f"-Dmaven.repo.local={repo}",
        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get",
        f"-Dartifact={art.coordinates}",
        "-Dtransitive=false",
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
    except OSError as exc:  # no such binary, not executable
        raise ArtifactError(f"mvn could not fetch {art.coordinates}: {exc}") from None
    target = repo / art.path
    if proc.returncode != 0 or not target.is_file():
        tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln][:2]
        raise ArtifactError(
            f"mvn could not fetch {art.coordinates}: {' '.join(tail) or f'exit {proc.returncode}'}"
        )
    sha1_file = target.with_name(target.name + ".sha1")
    return target, sha1_file.read_text() if sha1_file.is_file() else None


def _http_get(url: str, timeout: float = 120.0) -> bytes | None:
    """GET a URL; ``None`` on 404 (no such file published)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            data: bytes = resp.read()
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ArtifactError(f"GET {url} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ArtifactError(f"GET {url} failed: {exc}") from None


def _http_download(url: str, dest: Path, timeout: float = 120.0) -> None:
    """GET ``url`` into ``dest`` in chunks (a 363 MB plugin is never held in memory);
    ``timeout`` bounds each read, not the whole download."""
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as resp,  # noqa: S310 - fixed https URL
            dest.open("wb") as fh,
        ):
            shutil.copyfileobj(resp, fh, 1 << 20)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise ArtifactError(f"{url} does not exist on Maven Central") from None
        raise ArtifactError(f"GET {url} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ArtifactError(f"GET {url} failed: {exc}") from None


def _fetch_with_https(art: Artifact, dest_dir: Path) -> tuple[Path, str | None]:
    """Download ``art`` to ``dest_dir/art.filename`` (via a temporary file, so a broken
    download never leaves a partial file under the final name)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest_dir, delete=False) as tmp:
        pass
    try:
        _http_download(art.url, Path(tmp.name))
        sha1 = _http_get(art.url + ".sha1", timeout=30.0)
        target = dest_dir / art.filename
        os.replace(tmp.name, target)
    finally:
        Path(tmp.name).unlink(missing_ok=True)
    return target, sha1.decode("ascii", "replace") if sha1 is not None else None


def cached_copies(art: Artifact, cache_dir: Path) -> tuple[Path, Path]:
    """Where a copy of ``art`` may already be under ``cache_dir``: in Maven's layout under
    ``m2/`` (fetched with ``mvn``) and as a plain file (fetched over HTTPS)."""
    return cache_dir / "m2" / art.path, cache_dir / art.filename


def fetch(
    art: Artifact,
    cache_dir: Path,
    *,
    mvn: str | bool | None = True,
    log: Callable[[str], None] = lambda _m: None,
) -> Path:
    """The verified artifact under ``cache_dir``, downloading it when absent or corrupt.

    A copy already under ``cache_dir`` (:func:`cached_copies`: Maven's layout or a plain
    file) that passes :func:`verify` is used as it is. Otherwise ``mvn=True`` uses ``mvn``
    when it is on PATH; a string names the binary; ``False``/``None`` forces the HTTPS path.
    Maven downloads go to the private repository ``cache_dir/m2``; when ``mvn`` fails, the
    file is fetched over HTTPS instead.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    mvn_bin = shutil.which("mvn") if mvn is True else (mvn or None)
    repo = cache_dir / "m2"
    for cached in cached_copies(art, cache_dir):
        if cached.is_file():
            try:
                verify(cached, art)
                return cached
            except ArtifactError as exc:
                log(f"cached {cached.name} is corrupt ({exc}); downloading it again")
                cached.unlink()
    path: Path | None = None
    published: str | None = None
    if mvn_bin:
        log(f"fetching {art.coordinates} with mvn")
        try:
            path, published = _fetch_with_mvn(mvn_bin, art, repo)
        except ArtifactError as exc:
            log(f"{exc}; trying HTTPS")
    if path is None:
        log(f"fetching {art.url}" + (f" ({art.size / 1e6:.0f} MB)" if art.size else ""))
        path, published = _fetch_with_https(art, cache_dir)
    try:
        verify(path, art, published)
    except ArtifactError:
        path.unlink(missing_ok=True)
        raise
    return path
