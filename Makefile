# selfserve — common tasks. `make test` is the test command CI runs.

GO ?= go
export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# VERSION is what `selfserve version` prints (and the agent reports).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)

.PHONY: build test test-short demo vet fmt bench bench-quick

build: ## the binary, into bin/selfserve
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/selfserve ./cmd/selfserve

test: ## every test; first brings up PostgreSQL and Redis where missing (as root: installs them), or says what is missing
	scripts/test-services.sh
	$(GO) test -count=1 -timeout 20m ./...

test-short: ## tests that need no server
	TEST_DATABASE_URL= TEST_REDIS_URL= $(GO) test -short ./...

demo: ## the product on its embedded default, with the sample data
	$(GO) run ./cmd/selfserve demo

bench: ## every benchmark scenario at full size (needs root for the Samba AD DC); see BENCHMARKS.md
	$(GO) run ./cmd/bench

bench-quick: ## the same scenarios at small sizes: fails only if a scenario breaks, never on timing
	$(GO) run ./cmd/bench -quick

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
