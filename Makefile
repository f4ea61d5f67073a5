# meetrec — `make demo` records a real meeting; `make test` runs the whole suite.
# Both install what is missing first (Debian packages, meetrec's Node.js, npm ci, build).

# Everything here runs on the Node.js that scripts/install.sh puts into .node/ (Node 24 LTS,
# not the system's): its bin comes first on PATH for every recipe, so `node`, `npm`, `npx` and
# the `#!/usr/bin/env node` scripts of tsc and vitest all run on it, and so do the children the
# tests start (process.execPath).
export PATH := $(CURDIR)/.node/bin:$(PATH)

.PHONY: install build demo test bench bench-failover typecheck clean

install:
	@bash scripts/install.sh

build:
	@npm run -s build

demo: install
	@node --import tsx scripts/demo.ts

test: install
	@npx tsc -p tsconfig.json --noEmit
	@npx vitest run

bench: install
	@node --import tsx scripts/bench.ts
	@node --import tsx scripts/bench-failover.ts

bench-failover: install
	@node --import tsx scripts/bench-failover.ts

typecheck:
	@npx tsc -p tsconfig.json --noEmit

# .node/ stays: it is the runtime, not a build product (remove it by hand to fetch it again).
clean:
	rm -rf dist .cache
