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
# gotestsum runs go test as it is (its verbose output as it goes) and
# repeats every failed test's messages at the end, where a long log's
# tail — what CI keeps — shows them.
GOTESTSUM := $(GO) run gotest.tools/gotestsum@v1.13.0 --format standard-verbose --

.PHONY: all build check test test-root lint fuzz bench demo clean help install

all: build

help:
	@echo "make build      static bin/beo (CGO_ENABLED=0) with version and build hash"
	@echo "make test       unit + loopback cluster tests (no root needed): go test ./..."
	@echo "make test-root  netns / QEMU suites (root; installs nothing)"
	@echo "make check      everything CI runs: lint, test, test-root"
	@echo "make lint       go vet + staticcheck"
	@echo "make fuzz       every fuzzer for FUZZTIME each (default 30s)"
	@echo "make bench      benchmarks against the anchor tools"
	@echo "make install    beo in PREFIX/sbin, its links in PREFIX/bin, the systemd unit, a commented /etc/beowulf/config if none"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

# The root suites (ROOT_SUITES below) have their own target: they boot VMs
# and build namespaces, and run against the built binary.
test:
	$(GOTESTSUM) -race -count=1 $$($(GO) list ./... | grep -v -E '/test/(netns|browser|e2e)$$')

# Root suites: each directory that exists is run; they need root and the
# Debian packages .ci/run installs (netns: iproute2 busybox atftp curl nftables
# rsyslog; browser: chromium; e2e: qemu-system-x86 linux-image-amd64).
ROOT_SUITES := test/netns test/browser test/e2e
test-root: build
	@dirs="$$(for d in $(ROOT_SUITES); do [ -d $$d ] && echo ./$$d; done)"; \
	if [ -n "$$dirs" ]; then \
	  BEO_BIN=$(CURDIR)/$(BIN) $(GOTESTSUM) -count=1 -timeout 75m $$dirs; \
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

# Every bench/*/run script, each printing its markdown table (see its README).
bench: build
	@for r in bench/*/run; do \
	  [ -x "$$r" ] || continue; \
	  echo "== $$r"; "$$r" || exit 1; \
	done

clean:
	rm -rf bin

# The head node as a system service (ClusterWare's `service beowulf`):
# the binary, the applet links (bpsh, bpstat, …), the systemd unit (its
# ExecStart follows PREFIX) and, only where there is none, a commented
# /etc/beowulf/config of the built-in defaults. Then:
#   systemctl enable --now beo-master; systemctl reload beo-master
PREFIX  ?= /usr/local
UNITDIR ?= /etc/systemd/system
install: build
	install -D -m 755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/beo
	$(DESTDIR)$(PREFIX)/sbin/beo install-links $(DESTDIR)$(PREFIX)/bin >/dev/null
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/sbin/beo|$(PREFIX)/sbin/beo|g' pkg/head/beo-master.service > $(DESTDIR)$(UNITDIR)/beo-master.service
	@if [ ! -e $(DESTDIR)/etc/beowulf/config ]; then \
	  install -d $(DESTDIR)/etc/beowulf && $(BIN) config example > $(DESTDIR)/etc/beowulf/config && \
	  echo "wrote $(DESTDIR)/etc/beowulf/config (commented defaults: set interface, nodes, iprange)"; \
	else echo "kept $(DESTDIR)/etc/beowulf/config"; fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# The README's main job: a real cluster on this machine — `beo master` in
# a private network namespace and 3 QEMU nodes PXE-booting from it (`beo
# lab`, built-in defaults, nothing written by hand, all cleaned up after).
# Every node mounts the lab's home directory as /home over NFS (nfs-ganesha,
# run by beo master in the namespace): node 0 writes a file there and the
# master reads it ($BEO_LAB_HOME; root on a node is nobody there).
# Needs root and QEMU; as root, missing Debian packages are installed with
# apt-get. Otherwise it runs the simulated cluster (`beo sim`) and says why.
DEMO_CMD := bpstat; bpsh -a -p -s uname -a; beostat -b
DEMO_HOME := if [ -n "$$BEO_LAB_HOME" ]; then bpsh 0 sh -c "echo hello from node 0 > /home/hello" \
  && echo "on the master, $$BEO_LAB_HOME/hello (/home on every node, over NFS):" \
  && ls -l "$$BEO_LAB_HOME/hello" && cat "$$BEO_LAB_HOME/hello"; fi
demo: build
	@why=""; \
	if [ "$$(id -u)" != 0 ]; then why="not root (a network namespace and taps need root)"; \
	else \
	  missing=""; \
	  command -v qemu-system-x86_64 >/dev/null || missing="$$missing qemu-system-x86 ipxe-qemu"; \
	  ls /boot/vmlinuz-* >/dev/null 2>&1 || missing="$$missing linux-image-amd64"; \
	  command -v ip >/dev/null || missing="$$missing iproute2"; \
	  command -v ganesha.nfsd >/dev/null || missing="$$missing nfs-ganesha nfs-ganesha-vfs"; \
	  if [ -n "$$missing" ]; then \
	    if command -v apt-get >/dev/null; then \
	      echo "demo: installing$$missing with apt-get (apt may upgrade packages they depend on; this first run takes minutes longer)"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
	        || why="apt-get could not install$$missing"; \
	    else why="missing$$missing and no apt-get to install them"; fi; \
	  fi; \
	fi; \
	if [ -z "$$why" ]; then exec $(BIN) lab -n 3 sh -c '$(DEMO_CMD); $(DEMO_HOME)'; fi; \
	echo "demo: $$why: running the simulated cluster (beo sim) instead of QEMU nodes"; \
	exec $(BIN) sim -n 3 sh -c '$(DEMO_CMD)'
