#!/usr/bin/env bash
# Install everything xlidx needs on a fresh Debian/Ubuntu machine, into ./.venv. Idempotent:
# a second run only checks. Debian packages are installed when missing and we are root
# (or sudo works): a Java runtime for the dev node, redis-server for the queue, and, with
# --test, nginx and openssl for the TLS tests, chromium (headless) for the report test and
# rabbitmq-server for the RabbitMQ queue tests (its system service is stopped and disabled:
# the tests start nodes of their own). OpenSearch itself is fetched by `xlidx dev up`.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
if [ "$with_test" = 1 ]; then
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # the RabbitMQ queue tests start their own nodes (free ports, own epmd port)
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "install.sh: installing Debian packages: ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  if [[ " ${need[*]} " == *" rabbitmq-server "* ]]; then
    # the package starts a system node on 5672 where it can; the tests never use it
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
    else
      $sudo service rabbitmq-server stop >/dev/null 2>&1 || true
    fi
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "install.sh: creating .venv with $($python --version)" >&2
  "$python" -m venv .venv
fi
# reinstall only when the dependency list changed
stamp=.venv/.xlidx-install-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install.sh: installing xlidx and its dependencies into .venv (torch is large)" >&2
  # uv (from PyPI) downloads and unpacks in parallel: about a minute where pip took over two
  # on 2 cores. Where uv cannot be had or fails, pip installs the same, as it always did.
  # uv trusts the system's certificates, as pip does here (PIP_CERT), and compiles the
  # bytecode at install as pip does (the tests turn warnings into errors, and a dependency
  # compiled on first import under them can fail: ranx's invalid escape sequences).
  if .venv/bin/python -m pip install -q uv \
    && UV_NATIVE_TLS=1 UV_COMPILE_BYTECODE=1 \
      .venv/bin/python -m uv pip install -q --python .venv/bin/python -e '.[dev]'
  then
    :
  else
    echo "install.sh: uv unavailable or failed; installing with pip" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
  fi
  echo "$want" > "$stamp"
fi
