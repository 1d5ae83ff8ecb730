# cloudmount: `make demo` mounts a local directory; `make test` runs every test.
CARGO ?= cargo
DEMO_DIR ?= /tmp/cloudmount-demo
PREFIX ?= /usr/local
SBINDIR ?= /sbin

.PHONY: build demo demo-stop test check install uninstall

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

# The binary, and the mount helper link that `mount -t cloudmount` runs. DESTDIR for packaging.
install: build
	install -D -m 0755 target/release/cloudmount $(DESTDIR)$(PREFIX)/bin/cloudmount
	install -d $(DESTDIR)$(SBINDIR)
	ln -sf $(PREFIX)/bin/cloudmount $(DESTDIR)$(SBINDIR)/mount.cloudmount

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/cloudmount $(DESTDIR)$(SBINDIR)/mount.cloudmount
