# beo — build, test, lint, fuzz. `make help` lists the targets.
GO        ?= go
BIN       ?= bin/beo
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The build hash covers every tracked Go source and the module files, so the
# same tree hashes the same from any checkout (see pkg/buildinfo).
BUILDHASH := $(shell (git ls-files -z '*.go' go.mod go.sum 2>/dev/null | LC_ALL=C sort -z | xargs -0 cat 2>/dev/null) | sha256sum | cut -c1-16)
PKG       := github.com/beo-cluster/beo/pkg/buildinfo
LDFLAGS   := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).hash=$(BUILDHASH)
FUZZTIME  ?= 30s
STATICCHECK_VERSION := v0.8.2

.PHONY: all build check test test-root lint fuzz bench demo clean help

all: build

help:
	@echo "make build      static bin/beo (CGO_ENABLED=0) with version and build hash"
	@echo "make test       unit + loopback cluster tests (no root needed): go test ./..."
	@echo "make test-root  netns / QEMU suites (root; installs nothing)"
	@echo "make check      everything CI runs: lint, test, test-root"
	@echo "make lint       go vet + staticcheck"
	@echo "make fuzz       every fuzzer for FUZZTIME each (default 30s)"
	@echo "make bench      benchmarks against the anchor tools"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

test:
	$(GO) test -race -count=1 ./...

test-root: build
	@if [ -d test/netns ] || [ -d test/e2e ]; then \
	  BEO_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 40m $$(ls -d ./test/netns ./test/e2e 2>/dev/null); \
	else echo "no root suites yet"; fi

check: lint test test-root

lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Each fuzz target runs alone (go test -fuzz takes one target per package).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test $$pkg -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -parallel=1 || exit 1; \
	  done; \
	done

clean:
	rm -rf bin

# The README's main job: a simulated cluster on this machine.
demo: build
	$(BIN) sim -n 4 sh -c '$(CURDIR)/$(BIN) bpstat && $(CURDIR)/$(BIN) bpsh -a -p uname -a'
