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

# ---------------------------------------------------------------------------
# Packaging (issue 11): make deb, make image, make helm-lint, make helm-template.
# nfpm and helm come from the Go module proxy, pinned, installed once into
# bin/tools (nfpm v2.45.0: later releases import go.digitalxero.dev modules
# the module proxy does not serve). make test installs them first so that
# the packaging tests (deploy/packagetest, cmd/iofog-connector
# TestPkg*) do not build them while other tests run.
VERSION ?= $(shell sed -n 's/^var version = "\(.*\)"$$/\1/p' cmd/iofog-connector/version.go)
DEB_VERSION = $(subst -,~,$(VERSION))
PKG_ARCH ?= $(shell $(GO) env GOARCH)
PKG_DIR ?= bin
PKG_BIN ?= bin/pkg/linux-$(PKG_ARCH)/iofog-connector
MAINTAINER ?= iofog-connector maintainers <maintainers@iofog-connector.invalid>
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
NFPM_VERSION := v2.45.0
HELM_VERSION := v3.22.0
NFPM := $(CURDIR)/bin/tools/nfpm-$(NFPM_VERSION)/nfpm
HELM := $(CURDIR)/bin/tools/helm-$(HELM_VERSION)/helm
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)
IMAGE ?= iofog/iofog-connector:$(VERSION)
CHART := deploy/helm/iofog-connector
# The plain manifests in deploy/kubernetes are this rendering of the chart.
KUBE_SET := --set tls.existingSecret=iofog-connector-tls

.PHONY: deb image helm-lint helm-template helm-render kube-manifests pkg-tools
test: pkg-tools

# nfpm only where the package test runs (as root).
pkg-tools: $(HELM) $(if $(filter 0,$(shell id -u)),$(NFPM))

$(NFPM):
	GOBIN=$(dir $@) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

$(HELM):
	GOBIN=$(dir $@) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# A static binary: the package has no dependency on the C library.
$(PKG_BIN): FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$(PKG_ARCH) $(GO) build -trimpath \
		-ldflags "-s -w -buildid= -X main.version=$(VERSION)" -o $@ ./cmd/iofog-connector

deb: $(PKG_BIN) $(NFPM)
	@mkdir -p $(PKG_DIR)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) VERSION='$(DEB_VERSION)' ARCH=$(PKG_ARCH) \
		BINARY=$(PKG_BIN) MAINTAINER='$(MAINTAINER)' \
		$(NFPM) package --config deploy/debian/nfpm.yaml --packager deb --target $(PKG_DIR)/

image:
	@test -n "$(CONTAINER_ENGINE)" || { echo "image: neither docker nor podman found" >&2; exit 1; }
	$(CONTAINER_ENGINE) build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

helm-lint: $(HELM)
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set service.type=NodePort,ports.first=30000,ports.last=30019
	$(HELM) lint --strict $(CHART) $(KUBE_SET)

# helm-template renders the chart as deploy/kubernetes/iofog-connector.yaml
# was rendered and fails if they differ; helm-render renders it with
# HELM_ARGS (e.g. HELM_ARGS='--set dev=true') into $(PKG_DIR).
HELM_ARGS ?=
KUBE_HEADER := \# Generated by make kube-manifests from $(CHART) ($(KUBE_SET)); edit the chart, not this file.

helm-template: $(HELM)
	@mkdir -p $(PKG_DIR)
	{ echo '$(KUBE_HEADER)'; $(HELM) template iofog-connector $(CHART) $(KUBE_SET); } > $(PKG_DIR)/iofog-connector.k8s.yaml
	@diff -u deploy/kubernetes/iofog-connector.yaml $(PKG_DIR)/iofog-connector.k8s.yaml || \
		{ echo "helm-template: deploy/kubernetes/iofog-connector.yaml is not what the chart renders; run make kube-manifests" >&2; exit 1; }

helm-render: $(HELM)
	@mkdir -p $(PKG_DIR)
	$(HELM) template iofog-connector $(CHART) $(HELM_ARGS) > $(PKG_DIR)/iofog-connector.render.yaml

kube-manifests: $(HELM)
	{ echo '$(KUBE_HEADER)'; $(HELM) template iofog-connector $(CHART) $(KUBE_SET); } > deploy/kubernetes/iofog-connector.yaml
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


# api-check (issue 10) compares the exported API of the sdk packages with
# the snapshot of the last release, sdk/api/v0.txt: it fails with a diff
# when a stable package (see sdk/doc.go) loses a name or changes one
# incompatibly, and reports additions and kit changes. It reads the
# compiler's export data (~2 s, no network), so make test runs it.
# api-snapshot records the current API as the baseline: run it only
# deliberately (a release, or an intended break of the stable API) and
# commit sdk/api/v0.txt saying why.
.PHONY: api-check api-snapshot
test: api-check

api-check:
	$(GO) run ./internal/apicheck

api-snapshot:
	$(GO) run ./internal/apicheck -write
