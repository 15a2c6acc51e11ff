# ws_poc: build, run, test, benchmark and release both variants.
# Module targets run with GOWORK=off so each go.mod proves it stands alone;
# go.work exists for editors and for building everything together.

MODULES  := ws-single ws-multi loadtest
VARIANT  ?= single
GO       ?= go
BIN      := $(CURDIR)/bin
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# A variant's version comes from its own tags: ws-single/v1.2.3 -> v1.2.3.
version   = $(patsubst $(1)/%,%,$(shell git describe --tags --match '$(1)/v*' --abbrev=0 2>/dev/null || echo $(1)/v0.0.0-dev))
LDFLAGS   = -s -w -X main.version=$(call version,$(1)) -X main.commit=$(COMMIT)
# The same build line the Dockerfiles use (deploy/docker/*.Dockerfile).
GOBUILD   = cd $(1) && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(call LDFLAGS,$(1))" -o $(BIN)/$(1) .

# Fuzz budgets are execution counts (about 10 s each here), not durations: with a duration,
# go1.26's fuzz coordinator can fail a run at its deadline with a bare "context deadline
# exceeded" and no failing input (golang/go#75804, fixed in go1.27). FUZZTIME=1m (or 5000000x)
# overrides every target's budget.
FUZZTIME ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z0-9_%/-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

.PHONY: single
single: ## build bin/ws-single with the version stamped in
	$(call GOBUILD,ws-single)

.PHONY: multi
multi: ## build bin/ws-multi with the version stamped in
	$(call GOBUILD,ws-multi)

.PHONY: loadtest
loadtest: ## build bin/loadtest
	$(call GOBUILD,loadtest)

.PHONY: build
build: single multi loadtest ## build every binary into bin/

.PHONY: run
# CPU admission is off for the local demo: outside a container the cgroup is the whole
# desktop session, and a busy laptop would refuse the demo page's connection.
run: build ## local broker + synthetic feed + ws-$(VARIANT) on 127.0.0.1:3002 (VARIANT=multi for ws-multi)
	@$(BIN)/loadtest dev --broker 127.0.0.1:9092 & dev=$$!; \
	trap 'kill -INT $$dev 2>/dev/null; wait $$dev' EXIT; \
	WS_ADDR=127.0.0.1:3002 WS_LOG_FORMAT=console WS_KAFKA_BROKERS=127.0.0.1:9092 \
	WS_CPU_REJECT_THRESHOLD=0 $(BIN)/ws-$(VARIANT)

.PHONY: test
test: build vet $(addprefix test/,$(MODULES)) test/js fuzz test/deploy bench-smoke ## vet + staticcheck, every module's tests with -race, the JS client's tests, fuzz smoke, deploy checks, bench smoke

.PHONY: test/%
test/%: ## one module's tests with the race detector (e.g. make test/ws-single)
	cd $* && GOWORK=off WS_SINGLE_BIN=$(BIN)/ws-single WS_MULTI_BIN=$(BIN)/ws-multi LOADTEST_BIN=$(BIN)/loadtest \
		$(GO) test -race -count=1 -timeout 15m ./...

.PHONY: test/js
test/js: single multi loadtest ## the JavaScript client's tests (clients/js, Node's test runner) against both variants, and its npm pack + tsc check
	cd clients/js && WS_SINGLE_BIN=$(BIN)/ws-single WS_MULTI_BIN=$(BIN)/ws-multi LOADTEST_BIN=$(BIN)/loadtest npm test

.PHONY: test/deploy
test/deploy: single multi loadtest ## deploy checks: compose/k8s manifests, promtool, dashboard vs a live server, release dry run
	cd loadtest && GOWORK=off $(GO) vet -tags deploycheck ./internal/deploycheck
	cd loadtest && GOWORK=off WS_SINGLE_BIN=$(BIN)/ws-single WS_MULTI_BIN=$(BIN)/ws-multi LOADTEST_BIN=$(BIN)/loadtest \
		$(GO) test -tags deploycheck -race -count=1 -timeout 5m ./internal/deploycheck

# The load generator and the broker run on BENCH_CPUS; the variants pin themselves per
# bench/scenarios.json (ws-single on core 0, ws-multi on cores 0-1).
BENCH_CPUS ?= 1

.PHONY: bench
bench: single multi loadtest ## benchmark both variants (bench/scenarios.json) -> bench/results/<date>.md, .svg and JSON
	taskset -c $(BENCH_CPUS) $(BIN)/loadtest bench --scenarios bench/scenarios.json --bin $(BIN) --out-dir bench/results

.PHONY: bench-smoke
bench-smoke: single multi loadtest ## every bench scenario for seconds with few connections (temp dir); fails on loss or no figures
	out=$$(mktemp -d) && $(BIN)/loadtest bench --smoke --no-pin --scenarios bench/scenarios.json --bin $(BIN) --out-dir $$out

.PHONY: vet
vet: $(addprefix vet/,$(MODULES)) ## go vet and staticcheck (pinned in each go.mod as a tool) on every module

.PHONY: vet/%
vet/%:
	cd $* && GOWORK=off $(GO) vet ./...
	cd $* && GOWORK=off $(GO) tool staticcheck ./...
	$(if $(filter loadtest,$*),cd $* && GOWORK=off $(GO) tool staticcheck -tags deploycheck ./internal/deploycheck)

# Every fuzz target: module, package, target and its execution budget (about 10 s each here).
# loadtest/internal/deploycheck's TestMakeFuzzRunsEveryTarget fails when a Fuzz function of the
# repository is missing here.
FUZZ_TARGETS := \
	ws-single:./internal/protocol:FuzzParse:600000x \
	ws-single:./internal/protocol:FuzzAppendValue:100000x \
	ws-single:./internal/config:FuzzLoad:300000x \
	ws-single:./internal/cgroup:FuzzParseCPUMax:100000x \
	ws-single:./internal/cgroup:FuzzParseMountInfo:100000x \
	ws-single:./internal/auth:FuzzVerify:50000x \
	ws-single:./internal/auth:FuzzParsePatterns:100000x \
	ws-multi:./internal/protocol:FuzzParse:600000x \
	ws-multi:./internal/protocol:FuzzAppendValue:100000x \
	ws-multi:./internal/config:FuzzLoad:300000x \
	ws-multi:./internal/cgroup:FuzzParseCPUMax:100000x \
	ws-multi:./internal/cgroup:FuzzParseMountInfo:100000x \
	ws-multi:./internal/auth:FuzzVerify:50000x \
	ws-multi:./internal/auth:FuzzParsePatterns:100000x \
	loadtest:./internal/conform:FuzzSplitFrame:100000x \
	loadtest:./internal/frame:FuzzScan:1000000x \
	loadtest:./internal/frame:FuzzExtract:500000x \
	loadtest:./internal/load:FuzzParseSteps:50000x \
	loadtest:./internal/token:FuzzValidatePattern:100000x

.PHONY: fuzz
fuzz: ## run every fuzz target (FUZZ_TARGETS) for a fixed number of executions; FUZZTIME=1m for longer
	@set -e; for t in $(FUZZ_TARGETS); do \
		set -- $$(echo "$$t" | tr : ' '); \
		echo "fuzz $$1 $$2 $$3"; \
		(cd $$1 && GOWORK=off $(GO) test -run '^$$' -fuzz "^$$3\$$" -fuzztime $(if $(FUZZTIME),$(FUZZTIME),$$4) $$2); \
	done

DOCKER ?= docker
COMPOSE = $(DOCKER) compose -f deploy/compose/compose.yaml
# docker-% builds one image from the repository root with the Makefile's version and commit.
DOCKERBUILD = $(DOCKER) build -f deploy/docker/$(1).Dockerfile --build-arg VERSION=$(call version,$(1)) \
	--build-arg COMMIT=$(COMMIT) -t $(1):$(call version,$(1)) .

.PHONY: docker-single
docker-single: ## container image ws-single:<version> (deploy/docker/ws-single.Dockerfile)
	$(call DOCKERBUILD,ws-single)

.PHONY: docker-multi
docker-multi: ## container image ws-multi:<version> (deploy/docker/ws-multi.Dockerfile)
	$(call DOCKERBUILD,ws-multi)

.PHONY: docker-loadtest
docker-loadtest: ## container image loadtest:<version> (compose services feed and loadtest)
	$(call DOCKERBUILD,loadtest)

# The compose targets pass the same versions, so compose builds the same images as docker-%.
COMPOSEENV = WS_SINGLE_VERSION=$(call version,ws-single) WS_MULTI_VERSION=$(call version,ws-multi) \
	LOADTEST_VERSION=$(call version,loadtest) COMMIT=$(COMMIT)

.PHONY: compose-up
compose-up: ## Kafka + ws-single (:3002) + ws-multi (:3003) + feed + Prometheus (:9090) + Grafana (:3000)
	$(COMPOSEENV) $(COMPOSE) up -d --build

.PHONY: compose-loadtest
compose-loadtest: ## one load scenario in compose (LOADTEST_TARGET=ws-single|ws-multi)
	$(COMPOSEENV) $(COMPOSE) --profile loadtest run --rm loadtest

.PHONY: compose-down
compose-down: ## stop the compose stack (volumes kept; add -v by hand to drop them)
	$(COMPOSE) --profile loadtest down

.PHONY: release-%
release-%: ## tag a release: make release-single VERSION=v1.2.0 (also release-multi, release-loadtest)
	@test -n "$(VERSION)" || { echo "usage: make release-$* VERSION=vX.Y.Z" >&2; exit 2; }
	deploy/release.sh $* $(VERSION)

.PHONY: tidy
tidy: ## go mod tidy every module
	for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) mod tidy) || exit 1; done
