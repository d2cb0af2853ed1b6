# twofold: `make run` starts a development server, `make test` runs every check.
.DEFAULT_GOAL := help
GO ?= go
PKGS := ./...

.PHONY: help run build test lint fmt-check vet staticcheck unit bench bench-go

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: ## start twofold in development mode (SQLite under ./data, demo data, /demo, /dev/mail)
	$(GO) run ./cmd/twofold serve --dev

build: ## build the binary into ./bin/twofold
	$(GO) build -trimpath -o bin/twofold ./cmd/twofold

test: lint unit ## gofmt, go vet, staticcheck, then every test with -race

lint: fmt-check vet staticcheck ## static checks only

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

unit: ## the tests (PostgreSQL too when TWOFOLD_TEST_DATABASE_URL is set)
	$(GO) test -race -count=1 -timeout 5m $(PKGS)

bench: ## load-test a real twofold, rewrite docs/benchmarks.md; flags: ARGS="-quick -db sqlite"
	$(GO) run ./bench $(ARGS)

bench-go: ## Go micro-benchmarks of the hot paths (-benchmem)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
