# Wukong: one entry point for building, testing and running.
# `make` alone lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

ROOT := $(abspath .)
BIN := $(ROOT)/bin
export GOBIN := $(BIN)
# Go modules of the workspace (hack/ holds tool-only modules outside go.work).
MODULES := $(sort $(patsubst ./%/go.mod,%,$(shell find . \( -path ./hack -o -path ./bin -o -path ./.git \) -prune -o -name go.mod -print)))

# Pinned tool versions: the single place they are written down. The
# clusters' components (Kubernetes, helm, kind, KubeVirt, CDI, Multus, CNI
# plugins, local-path, NMState, CSI sidecars) are in scripts/versions.env,
# which every script reads too.
CONTROLLER_TOOLS_VERSION := v0.20.1
GOLANGCI_LINT_VERSION := v2.15.0
include scripts/versions.env
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

IMG ?= ghcr.io/novasphere/wukong-manager:$(shell awk '/^appVersion:/ {gsub(/"/, "", $$2); print $$2}' charts/wukong/Chart.yaml 2>/dev/null)
KIND_NAME ?= wukong

# Test knobs.
GO_TEST_FLAGS ?= -count=1 -timeout=30m
N ?= 500

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy, the Wukong CRD, RBAC, the chart's copies and test/crds.
	cd operator && $(CONTROLLER_GEN) object paths=./api/...
	cd operator && $(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=config/crd
	cd operator && $(CONTROLLER_GEN) rbac:roleName=wukong-manager paths=./internal/... paths=./manager/... output:rbac:dir=config/rbac
	CONTROLLER_GEN=$(CONTROLLER_GEN) scripts/gen-test-crds.sh
	@if [ -x scripts/gen-chart.sh ]; then scripts/gen-chart.sh; fi

.PHONY: verify-generate
verify-generate: generate ## Fail if generated files are out of date.
	@git add -N . >/dev/null 2>&1 || true
	@if ! git diff --quiet -- operator test/crds charts; then \
		git --no-pager diff --stat -- operator test/crds charts; \
		echo "generated files are stale: run 'make generate' and commit"; exit 1; fi

.PHONY: fmt
fmt: ## Format Go code.
	gofmt -s -w $(MODULES) hack

.PHONY: vet
vet: ## go vet every module.
	@for m in $(MODULES); do echo "vet $$m"; (cd $$m && go vet ./...); done

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint every module, shellcheck the scripts, verify module versions.
	@for m in $(MODULES); do echo "lint $$m"; (cd $$m && $(GOLANGCI_LINT) run --config $(ROOT)/.golangci.yml ./...); done
	@if command -v shellcheck >/dev/null; then shellcheck scripts/*.sh scripts/local-cluster/*.sh scripts/local-cluster/addons/*.sh .ci/run; else echo "shellcheck not installed (apt-get install shellcheck)"; exit 1; fi
	@$(MAKE) --no-print-directory verify-deps
	@scripts/verify-versions.sh

.PHONY: verify-deps
verify-deps: ## Fail if two modules disagree on a k8s.io/* or controller-runtime version.
	@scripts/verify-deps.sh $(MODULES)

.PHONY: tidy
tidy: ## go mod tidy every module.
	@for m in $(MODULES); do (cd $$m && go mod tidy); done

##@ Test

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver, etcd and kube-controller-manager from their Go modules into bin/k8s/.
	@scripts/envtest-assets.sh >/dev/null

.PHONY: test
test: envtest-assets ## Run every module's tests (unit, envtest integration, e2e against the sandbox).
	@export KUBEBUILDER_ASSETS=$$(scripts/envtest-assets.sh); \
	for m in $(MODULES); do echo "=== test $$m"; (cd $$m && go test $(GO_TEST_FLAGS) ./...) || exit 1; done

# A static pattern rule: an implicit test-% rule would not match
# test-lib/storage (make strips the directory part before matching it).
.PHONY: $(addprefix test-,$(MODULES))
$(addprefix test-,$(MODULES)): test-%: envtest-assets ## Test one module, e.g. make test-lib/storage (use the module dir).
	@export KUBEBUILDER_ASSETS=$$(scripts/envtest-assets.sh); cd $* && go test $(GO_TEST_FLAGS) ./...

##@ Run

.PHONY: sandbox
sandbox: envtest-assets ## Run the operator against an embedded local control plane (simulated cluster) with examples/ applied.
	@export KUBEBUILDER_ASSETS=$$(scripts/envtest-assets.sh); cd test && go run ./sandbox/cmd/sandbox --examples $(ROOT)/examples $(SANDBOX_FLAGS)

.PHONY: bench
bench: envtest-assets ## Benchmarks in the sandbox (N=500 Wukongs; e.g. N=100, N=1000) into bin/bench-N.json, plus Go micro-benchmarks.
	@export KUBEBUILDER_ASSETS=$$(scripts/envtest-assets.sh); cd test && go run ./bench/cmd/bench -n $(N) -out $(ROOT)/bin/bench-$(N).json
	@for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchmem ./...) ; done

.PHONY: soak
soak: envtest-assets ## The reliability suite at a bigger size (RELIABILITY_N=100 Wukongs).
	@export KUBEBUILDER_ASSETS=$$(scripts/envtest-assets.sh); cd test && RELIABILITY_N=$${RELIABILITY_N:-100} go test -count=1 -timeout 60m -v ./reliability/

.PHONY: fuzz
fuzz: ## Run every fuzz target (each func Fuzz* in any module's tests) for FUZZTIME each (default 30s).
	@for m in $(MODULES); do \
		for dir in $$(cd $$m && grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | xargs -r -n1 dirname | sort -u); do \
			out=$$(cd $$m && go test -list '^Fuzz' $$dir) || { echo "fuzz: cannot list the fuzz targets of $$m/$$dir" >&2; exit 1; }; \
			for f in $$(echo "$$out" | grep '^Fuzz'); do \
				echo "fuzz $$m/$$dir $$f"; \
				(cd $$m && go test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$dir) || exit 1; \
			done; \
		done; \
	done

.PHONY: guest-image
guest-image: ## Build (or reuse) the Debian guest image of the real-guest tier in bin/guest/ (root, Debian tools).
	@scripts/guest-deps.sh && scripts/guest-image.sh

.PHONY: guest-test
guest-test: ## Boot test Wukongs as real Debian guests under qemu (TCG), check them from inside (root; minutes; not in make test).
	@scripts/guest-test.sh

.PHONY: kubevirt-images
kubevirt-images: guest-image ## Build KubeVirt (scripts/versions.env) here (control plane static, virt-handler/virt-launcher in a Debian trixie rootfs) and its images and the guest's containerDisk as importable tars in bin/kubevirt/ (root; long).
	scripts/kubevirt-build.sh

.PHONY: cdi-images
cdi-images: local-path-images multus-images image-server-images ## Build CDI, local-path-provisioner, the CNI plugins, Multus thick and the guest-disk image server here (versions: scripts/versions.env), as importable tars and manifests in bin/{cdi,local-path,cni-plugins,multus,image-server}/ (root; long; `scripts/<name>-build.sh check` runs each image in a throwaway containerd).
	scripts/cdi-build.sh

.PHONY: local-path-images
local-path-images: ## Build local-path-provisioner and its busybox helper image, and its manifests, into bin/local-path/.
	scripts/local-path-build.sh

.PHONY: cni-plugins
cni-plugins: ## Build the reference CNI plugins into bin/cni-plugins/bin/.
	scripts/cni-plugins-build.sh

.PHONY: multus-images
multus-images: cni-plugins ## Build Multus thick (with the CNI plugins) and its manifest into bin/multus/.
	scripts/multus-build.sh

.PHONY: image-server-images
image-server-images: guest-image ## Build the image server serving bin/guest/disk.qcow2, and its manifest, into bin/image-server/.
	scripts/image-server-build.sh

.PHONY: csi-images
csi-images: ## Build our CSI driver (hack/csi-hostpath) with external-provisioner, external-resizer, csi-snapshotter and snapshot-controller as importable tars and manifests in bin/csi/ (StorageClasses wukong-csi-hostpath and wukong-csi-shared, VolumeSnapshot CRDs, VolumeSnapshotClass wukong-csi-hostpath; local-cluster-up installs them).
	scripts/csi-build.sh

##@ Local cluster (this machine: root, no Docker, no systemd)

LOCAL_KUBECONFIG := $(BIN)/local-cluster/kubeconfig

.PHONY: local-cluster-up
# LOCAL_CLUSTER_NODES=2 (or more): that many nodes, each in its own network
# namespace; the scripts read it from the environment.
local-cluster-up: ## Start etcd, the control plane, a kubelet with containerd here (LOCAL_CLUSTER_NODES=2: two nodes), and install the chart (idempotent; `scripts/local-cluster/up.sh --dry-run` prints the steps).
	scripts/local-cluster/up.sh

.PHONY: local-cluster-down
local-cluster-down: ## Stop everything local-cluster-up started and restore the machine as it was before.
	scripts/local-cluster/down.sh

.PHONY: e2e-local
# 1 when the node's kernel has no dummy links (CONFIG_DUMMY), which
# KubeVirt's bridge binding needs for a secondary NIC (docs/notes/real-cdi-multus.md).
LOCAL_NO_SECONDARY_NICS = $(shell zcat /proc/config.gz 2>/dev/null | grep -qE '^CONFIG_DUMMY=(y|m)' || echo 1)

e2e-local: ## The e2e suite against the local cluster: with KubeVirt built, a guest booted by real KubeVirt (tests needing what the cluster lacks skip with a reason).
	cd test && E2E_KUBECONFIG=$(LOCAL_KUBECONFIG) E2E_HELM=$(BIN)/helm-$(HELM_VERSION) E2E_CHART=$(ROOT)/charts/wukong \
		E2E_RELEASE=wukong E2E_RELEASE_NAMESPACE=wukong-system \
		E2E_GUEST_IMAGE=localhost/wukong/guest-disk:bookworm E2E_LOCAL_NODE=1 \
		E2E_NODE_CTL=$(ROOT)/scripts/local-cluster/node.sh E2E_OFFLINE=1 E2E_TIMEOUT_SCALE=5 E2E_NO_SECONDARY_NICS=$(LOCAL_NO_SECONDARY_NICS) \
		go test -count=1 -timeout 180m -parallel 3 -v ./e2e/

.PHONY: bench-provision
bench-provision: ## Provisioning benchmark on the local cluster: K=5 Wukongs by http import, from a catalog image, and as containerDisks (the floor: no disk to provision) (a table: time to all Running, bytes served, importer CPU).
	cd test && E2E_KUBECONFIG=$(LOCAL_KUBECONFIG) E2E_HELM=$(BIN)/helm-$(HELM_VERSION) E2E_CHART=$(ROOT)/charts/wukong \
		E2E_RELEASE=wukong E2E_RELEASE_NAMESPACE=wukong-system E2E_GUEST_IMAGE=localhost/wukong/guest-disk:bookworm E2E_LOCAL_NODE=1 E2E_OFFLINE=1 E2E_TIMEOUT_SCALE=5 \
		E2E_BENCH_PROVISION=1 E2E_BENCH_K=$(or $(K),5) go test -count=1 -timeout 120m -v -run TestLocalProvisionBench ./e2e/

##@ Real cluster (needs Docker and internet)

.PHONY: docker-build
docker-build: ## Build the manager image IMG (default: the chart's appVersion).
	docker build -t $(IMG) .

.PHONY: kind-up
kind-up: ## Create a kind cluster with Multus, NMState, KubeVirt, CDI and the chart.
	scripts/kind-up.sh --name $(KIND_NAME)

.PHONY: kind-down
kind-down: ## Delete the kind cluster.
	scripts/kind-down.sh --name $(KIND_NAME)

.PHONY: e2e
e2e: kind-up e2e-run ## kind-up, then the e2e suite against it.

.PHONY: e2e-run
e2e-run: ## The e2e suite against E2E_KUBECONFIG (default: the kind cluster's).
	cd test && E2E_KUBECONFIG=$${E2E_KUBECONFIG:-$(BIN)/kind-$(KIND_NAME).kubeconfig} go test -count=1 -timeout 60m -v ./e2e/

##@ Tools

$(CONTROLLER_GEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN)/.tmp-cg go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(BIN)/.tmp-cg/controller-gen $@ && rm -rf $(BIN)/.tmp-cg

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(BIN)/.tmp-gl go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/.tmp-gl/golangci-lint $@ && rm -rf $(BIN)/.tmp-gl
