# cloudmount: `make demo` mounts a local directory; `make test` runs every test.
CARGO ?= cargo
DEMO_DIR ?= /tmp/cloudmount-demo
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= /sbin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
# systemd reads generators from /usr/local/lib/... as well as /usr/lib/...
GENERATORDIR ?= $(PREFIX)/lib/systemd/system-generators
CLOUDMOUNT ?= target/release/cloudmount

.PHONY: build demo demo-stop test check install install-files uninstall

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

# Everything a host needs, in the standard places; DESTDIR for packaging. `install-files`
# installs an already built binary (CLOUDMOUNT=path), for tests and packagers.
install: build
	$(MAKE) install-files CLOUDMOUNT=target/release/cloudmount

install-files:
	install -D -m 0755 $(CLOUDMOUNT) $(DESTDIR)$(BINDIR)/cloudmount
	install -d $(DESTDIR)$(SBINDIR)
	ln -sf $(BINDIR)/cloudmount $(DESTDIR)$(SBINDIR)/mount.cloudmount
	install -d $(DESTDIR)$(GENERATORDIR)
	sed 's|@BINDIR@|$(BINDIR)|' systemd/cloudmount-generator > $(DESTDIR)$(GENERATORDIR)/cloudmount-generator
	chmod 0755 $(DESTDIR)$(GENERATORDIR)/cloudmount-generator
	install -d $(DESTDIR)$(DATADIR)/cloudmount/systemd
	install -m 0644 systemd/*.in config/mounts.example.toml $(DESTDIR)$(DATADIR)/cloudmount/systemd/
	install -d $(DESTDIR)$(MANDIR)/man1
	$(CLOUDMOUNT) man > $(DESTDIR)$(MANDIR)/man1/cloudmount.1
	install -d $(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/site-functions $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	$(CLOUDMOUNT) completions bash > $(DESTDIR)$(DATADIR)/bash-completion/completions/cloudmount
	$(CLOUDMOUNT) completions zsh > $(DESTDIR)$(DATADIR)/zsh/site-functions/_cloudmount
	$(CLOUDMOUNT) completions fish > $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/cloudmount.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cloudmount $(DESTDIR)$(SBINDIR)/mount.cloudmount
	rm -f $(DESTDIR)$(GENERATORDIR)/cloudmount-generator $(DESTDIR)$(MANDIR)/man1/cloudmount.1
	rm -rf $(DESTDIR)$(DATADIR)/cloudmount
	rm -f $(DESTDIR)$(DATADIR)/bash-completion/completions/cloudmount
	rm -f $(DESTDIR)$(DATADIR)/zsh/site-functions/_cloudmount
	rm -f $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/cloudmount.fish
