GO ?= go
BIN := bin/iofog-connector

.PHONY: all build run test vet fmt bench examples clean fuzz soak

all: build

build:
	$(GO) build -o $(BIN) ./cmd/iofog-connector

run: build
	./$(BIN) start

# test also runs every fuzz target briefly (FUZZTIME_TEST each, see
# .ci/fuzz); fuzz runs them longer: make fuzz FUZZTIME=5m.
FUZZTIME ?= 60s
FUZZTIME_TEST ?= 3s

test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...
	GO=$(GO) FUZZTIME=$(FUZZTIME_TEST) ./.ci/fuzz

fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./.ci/fuzz

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin

# examples (issue 4) builds the example transport plugin into its folder;
# put that folder in plugins.dir (daemon) or --plugin-dir (agent).
EXAMPLE_PLUGINS := examples/websocket-transport/iofog-transport-websocket
examples: $(EXAMPLE_PLUGINS)

examples/websocket-transport/iofog-transport-websocket: FORCE
	$(GO) build -o $@ ./examples/websocket-transport

.PHONY: FORCE
FORCE:

# bench (issue 6) builds everything and runs the benchmark harness on
# loopback: direct, haproxy and our public pipe over every transport the
# build has, then regenerates BENCHMARKS.md (~20 min on 2 cores).
# bench-quick is the development variant (1 repeat, small N, ~3 min) and
# writes bin/BENCHMARKS-quick.md. Extra harness flags: BENCH_FLAGS=...
BENCH_FLAGS ?=
BENCH_PLUGIN_DIR ?= examples/websocket-transport
BENCH_BIN := bin/connector-bench

.PHONY: bench-quick bench-tools bench-build
bench-tools:
	@command -v haproxy >/dev/null 2>&1 && command -v iperf3 >/dev/null 2>&1 || \
		{ apt-get update && apt-get install -y haproxy iperf3; } || \
		echo "bench: could not install haproxy/iperf3; those anchors are reported as skipped"

bench-build: build
	-@$(MAKE) --no-print-directory examples 2>/dev/null
	$(GO) build -o $(BENCH_BIN) ./cmd/connector-bench

bench: bench-tools bench-build
	./$(BENCH_BIN) run -bin $(BIN) $(if $(BENCH_PLUGIN_DIR),-plugin-dir $(BENCH_PLUGIN_DIR)) $(BENCH_FLAGS)

bench-quick: bench-tools bench-build
	./$(BENCH_BIN) run -quick -out bin/BENCHMARKS-quick.md -bin $(BIN) $(if $(BENCH_PLUGIN_DIR),-plugin-dir $(BENCH_PLUGIN_DIR)) $(BENCH_FLAGS)

# soak (issue 9) builds everything and runs the daemon for SOAK_DURATION
# (default 30m; e.g. make soak SOAK_DURATION=5m) on loopback over every
# transport the build has: public clients churn checksummed traffic both
# ways while agents are killed and restarted and mappings are added and
# removed; descriptors, threads and RSS (and goroutines when the daemon
# reports them) are sampled every 10 s. Writes SOAK.md. Not part of test.
# Extra flags: SOAK_FLAGS="-tls -concurrency 4" (connector-bench soak -h).
SOAK_DURATION ?= 30m
SOAK_FLAGS ?=

soak: bench-build
	./$(BENCH_BIN) soak -bin $(BIN) -duration $(SOAK_DURATION) -out SOAK.md $(if $(BENCH_PLUGIN_DIR),-plugin-dir $(BENCH_PLUGIN_DIR)) $(SOAK_FLAGS)
