# msp — make targets. `make run` starts the embedded default, `make test` runs every test.
SHELL := /usr/bin/env bash -o pipefail

# Binaries built by the project (tools from the pinned modules under hack/tools, and msp's own).
BIN ?= $(CURDIR)/_bin
export PATH := $(BIN):$(PATH)

# kcp-dev modules are missing from the checksum database; their go.sum lines are committed,
# so this only matters when a pin moves.
export GONOSUMDB ?= github.com/kcp-dev

# Local state of `make run` (kcp data folder, logs). Kept between runs so a second run resumes.
MSP_HOME ?= $(CURDIR)/.msp

GO_TEST_FLAGS ?=
E2E_TIMEOUT ?= 30m

KCP_TOOLS := $(BIN)/kcp $(BIN)/kcp-front-proxy $(BIN)/cache-server $(BIN)/apigen
CLI_TOOLS := $(BIN)/kubectl-kcp $(BIN)/kubectl-ws $(BIN)/kubectl-create-workspace
GEN_TOOLS := $(BIN)/controller-gen
KUBECTL := $(BIN)/kubectl
# A real Kubernetes control plane (no kubelet) for the Kubernetes provider's runtimes.
KUBE_TOOLS := $(BIN)/kube-apiserver $(BIN)/kube-controller-manager
ETCD := $(BIN)/etcd
TOOLS := $(KCP_TOOLS) $(CLI_TOOLS) $(GEN_TOOLS) $(KUBECTL) $(KUBE_TOOLS) $(ETCD)

# Version stamp for kubectl, so that it and the servers it talks to agree on what it is.
KUBECTL_VERSION := v1.36.0
KUBECTL_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBECTL_VERSION) -X k8s.io/client-go/pkg/version.gitVersion=$(KUBECTL_VERSION)

.PHONY: all
all: build

##@ Tools (built once from hack/tools/*, rebuilt when a pin changes)

.PHONY: tools
tools: $(TOOLS) ## Build kcp, apigen, controller-gen, kubectl, the kubectl kcp plugins, kube-apiserver, kube-controller-manager and etcd.

# Each tools module is a pin: its go.mod/go.sum are the prerequisites, so a binary is
# rebuilt exactly when its pinned version changes.
$(KCP_TOOLS) &: hack/tools/kcp/go.mod hack/tools/kcp/go.sum
	@echo ">> building kcp, kcp-front-proxy, cache-server and apigen (first time: about 7 minutes on 2 cores)"
	cd hack/tools/kcp && go build -o $(BIN)/ github.com/kcp-dev/kcp/cmd/kcp github.com/kcp-dev/kcp/cmd/kcp-front-proxy github.com/kcp-dev/kcp/cmd/cache-server github.com/kcp-dev/sdk/cmd/apigen
	@touch $(KCP_TOOLS)

$(CLI_TOOLS) &: hack/tools/cli/go.mod hack/tools/cli/go.sum
	@echo ">> building the kubectl kcp plugins"
	cd hack/tools/cli && go build -o $(BIN)/ github.com/kcp-dev/cli/cmd/kubectl-kcp github.com/kcp-dev/cli/cmd/kubectl-ws github.com/kcp-dev/cli/cmd/kubectl-create-workspace
	@touch $(CLI_TOOLS)

$(GEN_TOOLS) &: hack/tools/controller-gen/go.mod hack/tools/controller-gen/go.sum
	@echo ">> building controller-gen"
	cd hack/tools/controller-gen && go build -o $(BIN)/ sigs.k8s.io/controller-tools/cmd/controller-gen
	@touch $(GEN_TOOLS)

$(KUBECTL): hack/tools/kubectl/go.mod hack/tools/kubectl/go.sum
	@echo ">> building kubectl $(KUBECTL_VERSION)"
	cd hack/tools/kubectl && go build -ldflags "$(KUBECTL_LDFLAGS)" -o $(BIN)/ k8s.io/kubernetes/cmd/kubectl
	@touch $(KUBECTL)

# Stamped like kubectl: clients refuse a server whose version they cannot parse.
$(KUBE_TOOLS) &: hack/tools/kubernetes/go.mod hack/tools/kubernetes/go.sum
	@echo ">> building kube-apiserver and kube-controller-manager $(KUBECTL_VERSION) (first time: about 6 minutes on 2 cores)"
	cd hack/tools/kubernetes && go build -ldflags "$(KUBECTL_LDFLAGS)" -o $(BIN)/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
	@touch $(KUBE_TOOLS)

$(ETCD): hack/tools/etcd/go.mod hack/tools/etcd/go.sum
	@echo ">> building etcd"
	cd hack/tools/etcd && go build -o $(BIN)/etcd go.etcd.io/etcd/server/v3
	@touch $(ETCD)

##@ Code generation

API_GROUPS := platform onboarding postgres hosting kubernetes

.PHONY: codegen
# The CRDs' descriptions are the Go doc comments with their line breaks; hack/crd-descriptions
# joins the lines of each paragraph, so that `kubectl explain` wraps them to the terminal.
codegen: $(GEN_TOOLS) $(BIN)/apigen ## Regenerate deepcopy, CRDs, APIResourceSchemas and APIExports.
	controller-gen object:headerFile=hack/boilerplate.go.txt paths=./apis/...
	@for g in $(API_GROUPS); do \
	  set -e; \
	  controller-gen crd paths=./apis/$$g/... output:crd:artifacts:config=apiexports/crds/$$g.msp.dev; \
	done
	go run ./hack/crd-descriptions $(foreach g,$(API_GROUPS),apiexports/crds/$(g).msp.dev)
	@for g in $(API_GROUPS); do \
	  set -e; \
	  apigen --input-dir apiexports/crds/$$g.msp.dev --output-dir apiexports/$$g.msp.dev 2>&1 | grep -v 'level=info' || true; \
	  test -n "$$(ls apiexports/$$g.msp.dev/apiexport-*.yaml)"; \
	done
	@$(MAKE) --no-print-directory examples-codegen

# The example provider is a module of its own, generated the same way into its apiexport/.
EXAMPLE := examples/fileshare

.PHONY: examples-codegen
examples-codegen: $(GEN_TOOLS) $(BIN)/apigen ## Regenerate the example provider's deepcopy, CRD, APIResourceSchema and APIExport.
	cd $(EXAMPLE) && controller-gen object:headerFile=../../hack/boilerplate.go.txt paths=./apis/...
	cd $(EXAMPLE) && controller-gen crd paths=./apis/... output:crd:artifacts:config=apiexport/crds
	go run ./hack/crd-descriptions $(EXAMPLE)/apiexport/crds
	apigen --input-dir $(EXAMPLE)/apiexport/crds --output-dir $(EXAMPLE)/apiexport/fileshare.example.dev 2>&1 | grep -v 'level=info' || true
	@test -n "$$(ls $(EXAMPLE)/apiexport/fileshare.example.dev/apiexport-*.yaml)"

.PHONY: verify
verify: ## Fail when the committed generated files are stale (runs codegen, then compares with git).
	@$(MAKE) --no-print-directory codegen >/dev/null
	@hack/verify-clean.sh apis apiexports $(EXAMPLE)/apis $(EXAMPLE)/apiexport

##@ Build

.PHONY: build
build: ## Build msp's binaries and its own providers' into _bin.
	go build -o $(BIN)/ ./cmd/... ./providers/postgres/cmd/... ./providers/postgresserver/cmd/... ./providers/kubernetes/cmd/...

##@ Run

.PHONY: postgres
postgres: ## Install Debian's PostgreSQL server when it is missing (the local runtimes run it; about 30s).
	@hack/install-postgres.sh

# kcp shards of `make run`: SHARDS=2 runs a root shard, shard-1, kcp's cache server and its
# front proxy. A home started with one shard stays so, a sharded one may grow but not
# shrink: use another MSP_HOME for a different topology.
SHARDS ?= 1

.PHONY: run
run: tools build postgres ## Start the embedded default: kcp, the workspace tree, the platform. Ctrl-C stops it. SHARDS=2: a sharded kcp.
	$(BIN)/msp-local --home $(MSP_HOME) --shards $(SHARDS)

##@ Test

.PHONY: test
test: tools build postgres lint test-unit test-e2e test-verify ## Run every test (unit, e2e against a real kcp, codegen check).
	@hack/check-no-leftovers.sh $(BIN)

.PHONY: lint
lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...
	cd $(EXAMPLE) && go vet ./...

.PHONY: test-unit
test-unit: postgres ## Unit tests (pkg/pgserver and the postgres providers run real local PostgreSQL servers).
	go test $(GO_TEST_FLAGS) $$(go list ./... | grep -v /e2e)
	cd $(EXAMPLE) && go test $(GO_TEST_FLAGS) $$(go list ./... | grep -v /e2e)

.PHONY: test-e2e
test-e2e: tools build postgres ## End-to-end tests against a real kcp (one per test binary) and real kubectl.
	MSP_BIN=$(BIN) go test $(GO_TEST_FLAGS) -timeout $(E2E_TIMEOUT) ./e2e/...
	cd $(EXAMPLE) && MSP_BIN=$(BIN) go test $(GO_TEST_FLAGS) -timeout $(E2E_TIMEOUT) ./e2e/

.PHONY: test-verify
test-verify: tools ## Show that `make verify` passes on a clean tree and fails on a stale one.
	BIN=$(BIN) hack/test-verify.sh

##@ Probes (not part of `make test`)

.PHONY: probe-kcp-authz
probe-kcp-authz: tools build ## Experiments on kcp's authorization for per-component identities (e2e/probe/FINDINGS.md; about 6 minutes).
	MSP_BIN=$(BIN) go test -tags probe -count=1 -v -timeout 30m ./e2e/probe

##@ Benchmarks (not part of `make test`)

BENCH_FLAGS ?=

.PHONY: bench
bench: tools build ## Full benchmark: W=1000 workspaces, R=100 runtimes, C=10000 capabilities (results in _bench/).
	$(BIN)/msp-bench --out _bench $(BENCH_FLAGS)

.PHONY: bench-quick
bench-quick: tools build ## A shorter benchmark (about ten minutes): W=20, R=5, C=1000.
	$(BIN)/msp-bench --quick --out _bench $(BENCH_FLAGS)

# msp-chaos is the e2e framework's test binary for the fault-injection run (e2e/chaos,
# build tag chaos): the same real kcp, PostgreSQL servers and msp components as the e2e
# tests. MSP_CHAOS_SEED replays a run; MSP_CHAOS_CHURN, MSP_CHAOS_TENANTS, MSP_CHAOS_BURST,
# MSP_CHAOS_FAULT_EVERY shape it. Every component's log is kept in _chaos/logs.
.PHONY: chaos
chaos: tools build postgres ## Fault-injection run with an audit and a bad-input sweep (not part of make test; about 10 minutes); results and logs in _chaos/.
	go test -c -tags chaos -o $(BIN)/msp-chaos ./e2e/chaos
	rm -rf _chaos/logs
	MSP_BIN=$(BIN) MSP_CHAOS_OUT=$(CURDIR)/_chaos MSP_E2E_ARTIFACTS=$(CURDIR)/_chaos/logs $(BIN)/msp-chaos -test.v -test.timeout 60m -test.run '^(TestChaos|TestBadInputSweep)$$'

.PHONY: clean
clean: ## Remove built binaries (not the local state in .msp).
	rm -rf $(BIN)

.PHONY: help
help:
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
