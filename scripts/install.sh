#!/usr/bin/env bash
# Installs what meetrec needs on Debian, idempotently: the Debian packages that are missing,
# then the npm dependencies (npm ci, only when package-lock.json changed) and the build.
# Never downloads a browser: Chromium and Firefox ESR come from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runtime: browsers, display, sound, encoder. Tests and the demo: Janus + its demo pages,
# iproute2 for network namespaces, procps for process checks; PostgreSQL and Redis servers for
# the cluster tests (started by the tests themselves, on loopback); file (libmagic) for the Talk
# double, which sniffs uploads as Nextcloud does.
PACKAGES=(chromium firefox-esr xvfb pulseaudio pulseaudio-utils ffmpeg
          janus janus-demos iproute2 procps ca-certificates fonts-dejavu-core
          x11-xserver-utils openssh-server openssh-client rsync
          postgresql redis-server file)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install: missing Debian packages: ${missing[*]}; run 'make install' as root (or apt-get install them)" >&2
    exit 1
  fi
  echo "install: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "install: Node.js >= 20 is needed, found $(node --version); install Node 20 or newer first" >&2
  exit 1
fi

# npm dependencies, only when package.json or the lock file changed since the last install.
# `npm install` (not `npm ci`): it installs the versions pinned in package-lock.json, but npm 11's
# `ci` insists on lock entries for every platform's optional rollup binary, which the registry
# these machines use does not serve (npm/cli#4828), so `ci` can never pass here.
stamp=node_modules/.meetrec-lock.sha256
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install: npm install (versions from package-lock.json)"
  npm install --no-audit --no-fund
  want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
  echo "$want" > "$stamp"
fi

npm run -s build
chmod +x dist/cli/main.js
