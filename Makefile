# pyrunc build and test entry points. Every target runs as root on Debian 12.
SHELL := /bin/bash
PY := /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
ROOTFS := build/rootfs
EXAMPLE_ROOTFS := $(patsubst %/config.json,%/rootfs,$(wildcard config-examples/*/config.json))
# What pyrunc and the demo need; the test suite adds the reference runtime, the engines and image tools.
DEB_PACKAGES := busybox-static python3-venv libseccomp2 iproute2 uidmap
TEST_DEB_PACKAGES := runc golang-github-opencontainers-specs-dev containerd podman docker.io umoci skopeo conmon \
                     catatonit
RUNTIME ?= $(CURDIR)/$(VENV)/bin/pyrunc

.PHONY: all deps test-deps apt-install venv bytecode rootfs demo lint test spec-test bench clean vm test-cgroup2 test-cgroup-hybrid images integration-test

all: test

deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(DEB_PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(DEB_PACKAGES) $(TEST_DEB_PACKAGES)"

# Installs the Debian packages of $(PACKAGES) that are missing (nothing to do, no apt run, when all are there).
apt-install:
	@missing=$$(for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

venv: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	# pip drops the interpreter options of a script's #! line: give the launcher back its -S (bin/pyrunc)
	sed -i '1s|^\(#!.*python[0-9.]*\)$$|\1 -S|' $(VENV)/bin/pyrunc
	touch $@

# Bytecode for pyrunc itself: the environment may set PYTHONDONTWRITEBYTECODE, and a runtime started
# several times per container should not recompile its modules on every start.
bytecode: venv
	$(VPY) -m compileall -q pyrunc

rootfs: build/.rootfs.stamp $(EXAMPLE_ROOTFS)

build/.rootfs.stamp: scripts/build-rootfs.sh
	scripts/build-rootfs.sh $(ROOTFS)
	touch $@

$(EXAMPLE_ROOTFS): | build/.rootfs.stamp
	ln -sfn ../../$(ROOTFS) $@

demo: deps venv bytecode rootfs
	$(VENV)/bin/pyrunc run -b config-examples/busybox demo-$$$$ </dev/null

lint: venv
	$(VENV)/bin/ruff check .

images: build/images/.stamp

build/images/.stamp: scripts/build-image.sh scripts/build-rootfs.sh
	scripts/build-image.sh build/images
	touch $@

# containerd, podman, Docker and CRI end to end with the runtime (docs/containerd.md ...)
integration-test: test-deps venv bytecode rootfs images
	RUNTIME=$(RUNTIME) $(VPY) -m pytest -q -m integration tests/integration

test: test-deps venv bytecode rootfs images vm lint
	$(VPY) -m pytest tests spec-tests
	$(MAKE) --no-print-directory test-cgroup2
	$(MAKE) --no-print-directory test-cgroup-hybrid

# cgroup v2 tests in a throw-away QEMU VM with a pure cgroup2 hierarchy (docs/cgroup2-vm.md); this host
# is hybrid v1 and its hierarchies are never reconfigured. Exit status 125 means the VM itself failed to
# boot (not a test failure): the run is tried once more then.
CGROUP2_TESTS ?= $(wildcard tests/test_cgroups_*.py) tests/test_cgroup2_vm.py spec-tests/test_cgroups.py \
                 spec-tests/test_update_pause_events.py
CGROUP2_PYTEST_ARGS ?= -q -p no:cacheprovider -p no:hypothesispytest
CGROUP2_TIMEOUT ?= 1500

vm: build/vm/.stamp

build/vm/.stamp: scripts/cgroup2-vm/build.sh scripts/cgroup2-vm/init
	scripts/cgroup2-vm/build.sh build/vm
	touch $@

test-cgroup2: venv bytecode rootfs vm
	for try in 1 2; do \
		scripts/cgroup2-vm/run.py --timeout $(CGROUP2_TIMEOUT) -- $(VPY) -m pytest $(CGROUP2_PYTEST_ARGS) $(CGROUP2_TESTS); \
		status=$$?; [ $$status -eq 125 ] || exit $$status; \
	done; exit 125

# The systemd cgroup driver on a cgroup v1 host: the VM in its hybrid mode (v1 hierarchies, name=systemd, an
# empty cgroup2 at unified; docs/cgroup2-vm.md), with the v1 cgroup tests as a check of that layout. About
# 1.5 min. Exit status 125 (the VM failed to boot) is retried once, as for test-cgroup2.
CGROUP_HYBRID_TESTS ?= tests/test_cgroups_systemd.py tests/test_cgroups_host.py spec-tests/test_cgroups.py
CGROUP_HYBRID_TIMEOUT ?= 600

test-cgroup-hybrid: venv bytecode rootfs vm
	for try in 1 2; do \
		scripts/cgroup2-vm/run.py --cgroup-mode hybrid --timeout $(CGROUP_HYBRID_TIMEOUT) -- \
			$(VPY) -m pytest $(CGROUP2_PYTEST_ARGS) $(CGROUP_HYBRID_TESTS); \
		status=$$?; [ $$status -eq 125 ] || exit $$status; \
	done; exit 125

spec-test: test-deps venv bytecode rootfs
	RUNTIME=$(RUNTIME) $(VPY) -m pytest spec-tests

bench: venv bytecode rootfs
	$(VPY) benchmarks/bench.py

clean:
	rm -rf build $(EXAMPLE_ROOTFS) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
