# Build, run and test the Racky videos service (cargo-leptos workspace).
#
# `make help` lists the targets. Every target that needs tools depends on `setup`, which installs only
# what is missing, so a clean machine needs nothing but rustup, Node.js/npm and (for the browser test)
# Debian's Chromium, which `setup` also tries to install.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export PATH := $(HOME)/.cargo/bin:$(PATH)

# --- pinned tool versions ----------------------------------------------------------------------------
CARGO_LEPTOS_VERSION := 0.3.10
# wasm-bindgen-cli must match the wasm-bindgen crate exactly; read the pin from Cargo.toml.
WASM_BINDGEN_VERSION := $(shell sed -n 's/^wasm-bindgen *= *{ *version *= *"=\{0,1\}\([0-9][0-9.]*\)".*/\1/p' Cargo.toml)
# wasm-opt for release builds comes from npm's binaryen package (not Debian's, which is too old).
BINARYEN_VERSION := 132.0.0
TOOLS_DIR := $(CURDIR)/target/tools
# Cargo's build output lives in one per-user cache directory shared by every checkout (CI clones
# included), so a fresh clone compiles only this workspace's crates, not every dependency again.
# Cargo's own lock keeps concurrent builds safe. The static site stays per checkout in target/site.
export CARGO_TARGET_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/racky-videos/target
SERVER_BIN := $(CARGO_TARGET_DIR)/debug/server
CHROMIUM ?= /usr/bin/chromium

# --- `make run` defaults; any of them can be overridden from the environment or the command line ------
DEV_MODE ?= 1
DATA_DIR ?= ./data
SUPERADMIN_EMAIL ?= admin@racky.local
SUPERADMIN_PASSWORD ?= racky-admin-2024
LEPTOS_SITE_ADDR ?= 127.0.0.1:3000

.PHONY: help fuzz setup setup-rust setup-node setup-chromium setup-release run watch build release \
        test fmt fmt-check lint unit e2e bench bench-instructions bench-dom clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- setup ----------------------------------------------------------------------------------------------

setup: setup-rust setup-node setup-chromium ## Install whatever is missing: wasm target, cargo-leptos, wasm-bindgen-cli, npm deps, Chromium

setup-rust: ## Rust side of setup: wasm32 target, cargo-leptos, wasm-bindgen-cli (only if missing or wrong version)
	@test -n "$(WASM_BINDGEN_VERSION)" || { echo "setup: cannot read the wasm-bindgen pin from Cargo.toml" >&2; exit 1; }
	@if rustup target list --installed | grep -qx wasm32-unknown-unknown; then \
		echo "setup: wasm32-unknown-unknown target present"; \
	else \
		echo "setup: adding wasm32-unknown-unknown target"; rustup target add wasm32-unknown-unknown; \
	fi
	@if [ "$$(cargo-leptos --version 2>/dev/null | awk '{print $$2}')" = "$(CARGO_LEPTOS_VERSION)" ]; then \
		echo "setup: cargo-leptos $(CARGO_LEPTOS_VERSION) present"; \
	else \
		echo "setup: installing cargo-leptos $(CARGO_LEPTOS_VERSION)"; \
		cargo install cargo-leptos@$(CARGO_LEPTOS_VERSION) --locked; \
	fi
	@if [ "$$(wasm-bindgen --version 2>/dev/null | awk '{print $$2}')" = "$(WASM_BINDGEN_VERSION)" ]; then \
		echo "setup: wasm-bindgen $(WASM_BINDGEN_VERSION) present"; \
	else \
		echo "setup: installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
		cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force; \
	fi

setup-node: ## npm dependencies of the browser test (end2end/node_modules), without browser downloads
	@command -v npm >/dev/null || { echo "setup: npm not found; install Node.js 20+ (apt-get install nodejs npm)" >&2; exit 1; }
	@if [ -d end2end/node_modules/@playwright/test ] && [ -f end2end/node_modules/axe-core/axe.min.js ]; then \
		echo "setup: end2end/node_modules present"; \
	else \
		echo "setup: npm ci in end2end"; \
		cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund; \
	fi

setup-chromium: ## Debian's Chromium for the browser test (installed with apt-get when root)
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "setup: chromium present at $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "setup: installing chromium with apt-get"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
		echo "setup: $(CHROMIUM) is missing. Install Debian's chromium (sudo apt-get install chromium)" >&2; \
		echo "       or point CHROMIUM=/path/to/chromium at another Chromium build; 'make e2e' needs it." >&2; \
	fi

setup-release: setup ## Also install wasm-opt (npm binaryen@132) into target/tools for release builds
	@if [ -x "$(TOOLS_DIR)/node_modules/.bin/wasm-opt" ] && \
	    [ "$$($(TOOLS_DIR)/node_modules/.bin/wasm-opt --version 2>/dev/null | awk '{print $$3}')" = "$(firstword $(subst ., ,$(BINARYEN_VERSION)))" ]; then \
		echo "setup: wasm-opt (binaryen $(BINARYEN_VERSION)) present"; \
	else \
		echo "setup: installing binaryen@$(BINARYEN_VERSION) into $(TOOLS_DIR)"; \
		mkdir -p "$(TOOLS_DIR)"; \
		npm install --prefix "$(TOOLS_DIR)" --no-save --no-package-lock --no-audit --no-fund binaryen@$(BINARYEN_VERSION); \
	fi

# --- build and run --------------------------------------------------------------------------------------

build: setup ## Debug build: $CARGO_TARGET_DIR/debug/server (+ hash.txt) and target/site/pkg/racky-videos.<hash>.{js,wasm,css}
	cargo leptos build

release: setup-release ## Release build: target/release/server (+ hash.txt) and target/site (wasm-opt, hashed names, .br/.gz)
	PATH="$(TOOLS_DIR)/node_modules/.bin:$$PATH" cargo leptos build --release --precompress
	mkdir -p target/release && cp "$(CARGO_TARGET_DIR)/release/server" "$(CARGO_TARGET_DIR)/release/hash.txt" target/release/

run: export DEV_MODE := $(DEV_MODE)
run: export DATA_DIR := $(DATA_DIR)
run: export SUPERADMIN_EMAIL := $(SUPERADMIN_EMAIL)
run: export SUPERADMIN_PASSWORD := $(SUPERADMIN_PASSWORD)
run: export LEPTOS_SITE_ADDR := $(LEPTOS_SITE_ADDR)
run: export LEPTOS_OUTPUT_NAME := racky-videos
run: export LEPTOS_SITE_ROOT := target/site
run: export LEPTOS_SITE_PKG_DIR := pkg
run: build ## Build and serve on http://127.0.0.1:3000 (DEV_MODE=1, SQLite in ./data, a default superadmin)
	@echo "run: serving on http://$(LEPTOS_SITE_ADDR) (DEV_MODE=$(DEV_MODE), DATA_DIR=$(DATA_DIR), superadmin $(SUPERADMIN_EMAIL))"
	$(SERVER_BIN)

watch: export DEV_MODE := $(DEV_MODE)
watch: export DATA_DIR := $(DATA_DIR)
watch: export SUPERADMIN_EMAIL := $(SUPERADMIN_EMAIL)
watch: export SUPERADMIN_PASSWORD := $(SUPERADMIN_PASSWORD)
watch: setup ## Like run, but rebuilds and reloads on every change (cargo leptos watch)
	cargo leptos watch

# --- checks ---------------------------------------------------------------------------------------------

# The steps run in order and each prints how long it took.
TEST_STEPS := setup fmt-check lint unit build e2e
test: ## Everything CI runs: setup, fmt check, clippy, Rust tests, build, browser test (each step timed)
	@for step in $(TEST_STEPS); do \
		start=$$(date +%s); \
		$(MAKE) --no-print-directory $$step; \
		echo "test: step '$$step' passed in $$(( $$(date +%s) - start ))s"; \
	done

fmt: ## Format the Rust code
	cargo fmt --all

fmt-check: ## Fail if the Rust code is not formatted
	cargo fmt --all -- --check

# `app` has two mutually exclusive features (ssr for the server, hydrate for the browser), so clippy runs
# once per side: app[ssr] + server natively (one invocation, so one feature resolution and one set of
# dependency artifacts, the same one `unit` and `build` use), and frontend for wasm32.
lint: setup-rust ## clippy with -D warnings: app[ssr] + server, frontend (wasm32)
	cargo clippy -p app -p server --features app/ssr --all-targets -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

unit: ## Rust tests: app[ssr] (with the store conformance suite) and the server's HTTP tests; SQLite + MongoDB
	scripts/with-mongo.sh cargo test -p app -p server --features app/ssr

fuzz: ## Generated-input test over /internal/* and the REST query strings, 100,000 cases (make test runs 2,000)
	FUZZ_CASES=$${FUZZ_CASES:-100000} cargo test -p server --features app/ssr --test http fuzz -- --nocapture

e2e: build ## Browser test: start the debug server on a free loopback port and run Playwright against it
	SERVER_BIN=$(SERVER_BIN) bash end2end/run.sh

bench: ## Benchmarks (print figures; never part of `make test`)
	cargo bench -p server

bench-instructions: ## The server's instructions per success callback, counted by callgrind (valgrind): an A/B that machine noise does not blur
	@command -v valgrind >/dev/null || { echo "bench-instructions: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
	RACKY_BENCH_INSTRUCTIONS=1 cargo bench -p server --bench throughput

bench-dom: release setup-node setup-chromium ## Browser benchmark (release build): webhook -> DOM, 10 dashboards, 2,000 callbacks/s
	SERVER_BIN="$(CURDIR)/target/release/server" bash end2end/run.sh --config bench.config.ts

clean: ## Remove build output, test artifacts and npm deps (keeps ./data)
	cargo clean
	rm -rf target end2end/node_modules end2end/test-results end2end/playwright-report
