# pyrunc build and test entry points. Every target runs as root on Debian 12.
SHELL := /bin/bash
PY := /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
ROOTFS := build/rootfs
EXAMPLE_ROOTFS := $(patsubst %/config.json,%/rootfs,$(wildcard config-examples/*/config.json))
DEB_PACKAGES := busybox-static runc python3-venv uidmap iproute2 libseccomp2 golang-github-opencontainers-specs-dev
RUNTIME ?= $(CURDIR)/$(VENV)/bin/pyrunc

.PHONY: all deps venv bytecode rootfs demo lint test spec-test bench clean

all: test

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
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

test: deps venv bytecode rootfs lint
	$(VPY) -m pytest tests spec-tests

spec-test: deps venv bytecode rootfs
	RUNTIME=$(RUNTIME) $(VPY) -m pytest spec-tests

bench: venv bytecode rootfs
	$(VPY) benchmarks/bench.py

clean:
	rm -rf build $(EXAMPLE_ROOTFS) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
