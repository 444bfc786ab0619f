# cdcq: `make run` starts the whole system, `make test` runs every test.
# Both install what they need on a fresh Debian machine first.

GO        ?= go
BIN       := bin/cdcq
PG_CTL    := $(firstword $(wildcard /usr/lib/postgresql/*/bin/pg_ctl))
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CLUSTER_DIR ?= .cluster

.PHONY: run test soak build deps deps-system deps-go vet bench bench-cluster clean cluster-up cluster-down run-cluster

## run: build cdcq and start everything in one process (`cdcq dev`)
run: deps build
	./$(BIN) dev

## cluster-up: start Kafka, Kafka Connect (Debezium) and Flink (SQL Gateway)
## on this machine without Docker, from pinned Maven jars; writes .cluster/env
cluster-up: deps
	$(GO) run ./cmd/localcluster up -dir $(CLUSTER_DIR)

## cluster-down: stop that cluster (data and logs stay in .cluster)
cluster-down:
	$(GO) run ./cmd/localcluster down -dir $(CLUSTER_DIR)

## run-cluster: `cdcq dev` against that cluster (Debezium capture, Flink queries)
run-cluster: cluster-up build
	set -a; . ./$(CLUSTER_DIR)/env; set +a; ./$(BIN) dev

## test: formatting, vet, and all tests with the race detector; the soak
## (TestSoakEmbeddedWorkersKilled) runs a short round here
test: deps vet
	CDCQ_SOAK_CYCLES=$${CDCQ_SOAK_CYCLES:-300} CDCQ_SOAK_MAX=$${CDCQ_SOAK_MAX:-4m} \
	$(GO) test -race -count=1 -timeout 28m ./...

## soak: the full soak (issue "resilience"): 1,000 create/createCachedQuery/
## delete cycles over 50 environments within 10 minutes while `cdcq worker`
## processes are SIGKILLed, with the embedded engines; then the short soak
## with Debezium and Flink on the local cluster (CDCQ_SOAK_CLUSTER=1).
## Sizes: CDCQ_SOAK_CYCLES (1000), CDCQ_SOAK_MAX (10m),
## CDCQ_SOAK_CLUSTER_CYCLES (30), CDCQ_SOAK_CLUSTER_MAX (4m).
soak: deps
	$(GO) test -race -count=1 -timeout 20m -v -run '^TestSoakEmbeddedWorkersKilled$$' ./internal/service/
	CDCQ_SOAK_CLUSTER=1 $(GO) test -race -count=1 -timeout 10m -v -run '^TestSoakClusterWorkersKilled$$' ./internal/service/

build:
	$(GO) build -o $(BIN) ./cmd/cdcq

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## bench: benchmarks, printed side by side
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-cluster: the real cluster's engines (Debezium, Flink) against the
## embedded ones, in one run on one source database and one Kafka, figures
## side by side; asserts no timings. Starts $(CLUSTER_DIR) with the normal JIT
## unless it is up, or uses the cluster whose env file CDCQ_TEST_CLUSTER_ENV
## names. Sizes: CDCQ_BENCH_CLUSTER_ROWS (200000), CDCQ_BENCH_CLUSTER_SECONDS
## (20), CDCQ_BENCH_CLUSTER_UPDATES (100000).
bench-cluster: deps
	@if [ -z "$$CDCQ_TEST_CLUSTER_ENV" ]; then $(GO) run ./cmd/localcluster up -dir $(CLUSTER_DIR) >/dev/null || exit 1; fi
	@envfile=$$(realpath "$${CDCQ_TEST_CLUSTER_ENV:-$(CLUSTER_DIR)/env}") || exit 1; \
	out=$$(mktemp); \
	( CDCQ_TEST_CLUSTER_ENV=$$envfile $(GO) test -run '^$$' -bench '^BenchmarkCluster' -benchtime 1x -timeout 90m ./internal/service/; \
	  echo $$? >$$out.rc ) | tee $$out; \
	rc=$$(cat $$out.rc); \
	echo; echo "cluster engine vs embedded engine, side by side (cluster at $$envfile):"; \
	grep '^cluster-vs-embedded: ' $$out | sed 's/^cluster-vs-embedded: /  /'; \
	rm -f $$out $$out.rc; exit $$rc

deps: deps-system deps-go

# PostgreSQL server binaries (job state in dev mode, private servers in
# tests) and Node.js (Prisma's reference parser in tests) come from Debian,
# and so do Java 17 and Maven (the local cluster's JVMs and their jars).
deps-system:
	@if [ -z "$(PG_CTL)" ] || ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		echo "installing Debian packages: postgresql nodejs npm"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql $$(command -v node >/dev/null 2>&1 || echo nodejs) $$(command -v npm >/dev/null 2>&1 || echo npm); \
	fi
	@if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then \
		echo "installing Debian packages: openjdk-17-jdk-headless maven"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q openjdk-17-jdk-headless maven; \
	fi

deps-go:
	$(GO) mod download

clean:
	rm -rf bin
