GO ?= go
BIN := bin/iofog-connector

.PHONY: all build run test vet fmt bench examples clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/iofog-connector

run: build
	./$(BIN) start

test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
