# cloudmount: `make demo` mounts a local directory; `make test` runs every test.
CARGO ?= cargo
DEMO_DIR ?= /tmp/cloudmount-demo

.PHONY: build demo demo-stop test check

build:
	$(CARGO) build --release

# Mount a sample local directory (the embedded file:// backend) and list it.
demo: build
	@DEMO_DIR=$(DEMO_DIR) bash tests/demo.sh

demo-stop:
	@./target/release/cloudmount unmount $(DEMO_DIR)/mnt && echo "unmounted $(DEMO_DIR)/mnt"

# Install the test servers (moto, Azurite, fuse3) when missing, then run every test.
test:
	bash .ci/install.sh
	$(CARGO) test -- --test-threads=2

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
