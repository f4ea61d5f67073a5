# meetrec — `make demo` records a real meeting; `make test` runs the whole suite.
# Both install what is missing first (Debian packages, npm ci, build).

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

clean:
	rm -rf dist .cache
