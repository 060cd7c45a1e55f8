# Rail — make targets. `make test` and `make demo` need root (network
# namespaces, XDP, AF_XDP); CI runs them as root with CI=true.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFLAGS_TEST ?=
SHELL_SCRIPTS := $(wildcard tools/*.sh tools/lib/*.sh) .ci/run

.PHONY: all build test lint shellcheck demo fleet-demo generate bench soak overload lab-takeover clean

all: build

build:
	$(GO) build -o bin/raild ./cmd/raild
	$(GO) build -o bin/railbench ./cmd/railbench
	$(GO) build -o bin/railctl ./cmd/railctl

# lint first (gofmt, go vet, shellcheck), then every test; privileged tests
# run when root, and must run (not skip) when CI=true.
test: lint
	$(GO) test -timeout 30m $(GOFLAGS_TEST) ./...
	@# The pipeline as other architectures build it (prefetch_other.go), here.
	$(GO) test -tags rail_noasm ./pipeline

lint: shellcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')); \
	if [[ -n $$out ]]; then echo "gofmt: these files need 'gofmt -w':"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# The pure packages and the admin CLI build elsewhere too (replay, check, railctl on a laptop).
	GOOS=darwin $(GO) vet ./maglev/... ./pipeline/... ./control/... ./cmd/railctl/...
	GOARCH=arm64 $(GO) vet ./pipeline/...

shellcheck:
	@if ! command -v shellcheck >/dev/null; then \
		if [[ $${CI:-} == true ]]; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; \
		else \
			echo "shellcheck not installed: skipping the shell scripts (apt-get install shellcheck)"; exit 0; \
		fi; \
	fi; \
	shellcheck $(SHELL_SCRIPTS) && echo "shellcheck: $(SHELL_SCRIPTS) clean"

# The whole thing in the veth lab: see tools/demo.sh --help.
# Both stages: real clients through the VIP to nginx backends (DSR), then
# synthetic GRE traffic from trafgen with the packet counts and rates.
demo:
	tools/demo.sh --gre

# A fleet losing a node: three raild nodes behind a bird2 router (BGP, ECMP),
# one killed mid-download. See tools/fleet-demo.sh --help and docs/FLEET.md.
fleet-demo:
	tools/fleet-demo.sh

# Regenerates the XDP steering program's Go bindings (needs clang-14, libbpf-dev).
generate:
	$(GO) generate ./rings/...

# The in-memory pipeline benchmark, then (as root) `railbench compare`:
# raild, the asavie/xdp baseline, XDP_TX, kernel forwarding and the loopback ceiling on the veth
# lab (namespaces rb-gen/rb-lb); writes bench/results/veth-lab.{md,csv,png}.
# About 4 minutes on 2 cores. See bench/README.md.
bench: build
	$(GO) build -o bin/asaviefwd ./bench/asaviefwd
	bin/railbench pipeline --packets 1000000 --flows 10000
	$(GO) test -run '^$$' -bench . -benchmem ./pipeline/ ./maglev/
	bin/railbench compare --name veth-lab --repeat 3 --duration 1500ms

# The long soak (as root): raild for 10 minutes on the lab (namespaces rs-*)
# under GRE traffic, health checks every 100 ms, a metrics scrape and an API
# call ten times a second and a reload every 10 s; it passes when its RSS
# after the warm-up is within 10 % of the end, no UMEM frame is lost and
# nothing is dropped but what the traffic asks for, and it logs the RSS
# curve and what the data path felt (cmd/raild/soak_lab_linux_test.go;
# `make test` runs the same test for 40 s). RAIL_SOAK=30m for longer,
# RAIL_SOAK_POLICY=off|limit to try another memory policy.
soak:
	RAIL_SOAK=$${RAIL_SOAK:-10m} $(GO) test -run '^TestLabSoak$$' -count=1 -v -timeout 2h ./cmd/raild

# Ten takeovers in a row (as root): raild run --takeover replaces the running
# raild ten times under one GRE load over 1,000 flows on the lab (namespaces
# rto-*); it passes when no frame is lost or reordered, the UMEM frames and
# connection entries add up after each, and the failure paths leave the
# running raild forwarding (cmd/raild/takeover_lab_linux_test.go; `make test`
# runs one takeover), at 100,000 frames/s (RAIL_TAKEOVER_RATE to change it).
lab-takeover:
	RAIL_TAKEOVERS=$${RAIL_TAKEOVERS:-10} $(GO) test -run '^TestLabTakeover$$' -count=1 -v -timeout 20m ./cmd/raild

# The long overload (as root): raild on the lab (namespaces ro-*) is offered
# twice what it forwarded on a capacity ladder measured first, for 60 s, on
# top of a steady stream at a quarter of it; it passes when raild survives,
# every lost frame is counted (offered = forwarded + veth ring drops +
# rail_xsk_* + verdicts, exactly), the steady stream is forwarded in full
# again within a second and the RSS stays flat, and it logs the figures
# (cmd/raild/overload_lab_linux_test.go, docs/DEPLOY.md; `make test` runs
# it for 15 s). RAIL_OVERLOAD=5m for longer, RAIL_OVERLOAD_FACTOR=4 for more.
overload:
	RAIL_OVERLOAD=$${RAIL_OVERLOAD:-60s} $(GO) test -run '^TestLabOverload$$' -count=1 -v -timeout 30m ./cmd/raild

clean:
	rm -rf bin
