# smbsession: `make demo` shows real sessions of a private Samba; `make test` runs the tests.
# Both install what is missing (Samba from the distribution, a virtualenv with the package)
# and are fast the second time.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Other Samba releases, each in a debootstrap chroot cached under /var/tmp, for the live
# release matrix (tests/test_releases.py): suite -> Samba release.
#   bullseye 4.13, trixie 4.22, trixie-backports 4.24 (trixie + its backports), sid 4.25
CHROOT ?= /var/tmp/smbsession-trixie
CHROOT_SUITES ?= bullseye trixie trixie-backports sid
CHROOT_BASE ?= /var/tmp/smbsession-
CHROOT_PACKAGES := samba,smbclient,python3-samba,tdb-tools
# trixie and sid: without python3-cffi-backend, python3-cryptography (and with it
# python3-samba) stays unconfigured in a minbase debootstrap
CHROOT_EXTRA_trixie := ,python3-cffi-backend
CHROOT_EXTRA_sid := ,python3-cffi-backend

.PHONY: demo demo-domain test bench bench-cluster lint system-deps samba-chroot samba-chroots domain-deps cluster-deps venv clean shell-deps man monitor-deps

# The demo's lab directory (empty: the default, /var/lib/smbsession/lab for root) and how
# long its sample clients stay connected.
LAB_DIR ?=
DEMO_SECONDS ?= 300
LAB_ARGS = $(if $(LAB_DIR),--dir '$(LAB_DIR)')
# The demo needs only the package and the [lab] extra (smbprotocol), not the test extras.
DEMO_STAMP := $(VENV)/.installed-demo

demo: system-deps $(DEMO_STAMP)
	@conf=$$($(BIN)/smbsession lab start $(LAB_ARGS)) && \
	  $(BIN)/smbsession lab clients $(LAB_ARGS) --seconds $(DEMO_SECONDS) && \
	  echo "+ Get-SmbSession -SmbConf $$conf" && \
	  $(BIN)/Get-SmbSession -SmbConf "$$conf" </dev/null

# The seed's world: an AD domain in network namespaces, listed from the host (about 15 s).
demo-domain: system-deps domain-deps $(STAMP)
	@conf=$$($(BIN)/smbsession lab start --domain) && \
	  $(BIN)/smbsession lab clients --domain --seconds 300 && \
	  echo "+ Get-SmbSession -SmbConf $$conf" && \
	  $(BIN)/Get-SmbSession -SmbConf "$$conf" </dev/null && \
	  echo "+ Get-SmbSession -SmbConf $$conf -ClientUserName 'Contoso\Contoso-HV2\$$'" && \
	  $(BIN)/Get-SmbSession -SmbConf "$$conf" -ClientUserName 'Contoso\Contoso-HV2$$' </dev/null

test: system-deps samba-chroots shell-deps domain-deps cluster-deps monitor-deps $(STAMP)
	SMBSESSION_CHROOT=$(CHROOT) SMBSESSION_CHROOT_BASE=$(CHROOT_BASE) $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: system-deps $(STAMP)
	$(BIN)/python benchmarks/bench_sessions.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# Samba and the tools the tests use, from Debian/Ubuntu packages (needs root).
system-deps:
	@missing=""; \
	for cmd in smbd:samba smbclient:smbclient tdbdump:tdb-tools ss:iproute2 pgrep:procps sshd:openssh-server; do \
	  command -v $${cmd%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${cmd%%:*} ] || missing="$$missing $${cmd##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or: sudo apt-get install$$missing)"; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now smbd nmbd ssh >/dev/null 2>&1 || true; fi; \
	fi

# zsh (the completion tests run it), man and groff (the man page tests render the pages).
shell-deps:
	@missing=""; \
	for cmd in zsh:zsh man:man-db groff:groff-base; do \
	  command -v $${cmd%%:*} >/dev/null 2>&1 || missing="$$missing $${cmd##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or: sudo apt-get install$$missing)"; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The man pages (man/man1), made from the help text; commit them (pip installs them).
man: $(STAMP)
	$(BIN)/python -m smbsession.cli.manpage man/man1

# CTDB for the cluster lab and tests (Debian's ctdb package; needs root). The package's
# service is left stopped and disabled: the lab runs its own ctdbd per node.
cluster-deps:
	@if ! command -v ctdbd >/dev/null 2>&1 && [ ! -x /usr/sbin/ctdbd ]; then \
	  echo "installing: ctdb"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or: sudo apt-get install ctdb)"; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends ctdb >/dev/null || \
	    { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends ctdb >/dev/null; }; \
	  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now ctdb >/dev/null 2>&1 || true; fi; \
	fi

bench-cluster: system-deps cluster-deps $(STAMP)
	$(BIN)/python benchmarks/bench_cluster.py $(BENCH_ARGS)

# Debian's Prometheus (a real server scrapes the exporter in the tests; promtool checks the
# exposition) and tmux. Its postinst would start a prometheus service on :9090: a
# policy-rc.d that forbids starting services is put in place for the install (unless one is
# there already), and a prometheus the package started anyway is stopped.
monitor-deps:
	@missing=""; \
	for cmd in prometheus:prometheus promtool:prometheus tmux:tmux; do \
	  command -v $${cmd%%:*} >/dev/null 2>&1 || missing="$$missing $${cmd##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or: sudo apt-get install$$missing)"; exit 1; fi; \
	  policy=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d; \
	    policy=yes; \
	  fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
	           --no-install-recommends $$missing >/dev/null; }; \
	  status=$$?; \
	  [ -z "$$policy" ] || rm -f /usr/sbin/policy-rc.d; \
	  if command -v systemctl >/dev/null 2>&1; then \
	    systemctl disable --now prometheus >/dev/null 2>&1 || true; fi; \
	  [ ! -f /run/prometheus/prometheus.pid ] || kill "$$(cat /run/prometheus/prometheus.pid)" 2>/dev/null || true; \
	  exit $$status; \
	fi

# Each chroot is built once (a minute or two, all suites in parallel) and reused while it
# has an smbd. A suite that cannot be built (no network, mirror down) leaves
# /var/tmp/smbsession-<suite>.failed with the log's tail: the tests of that release then
# FAIL and print it (a matrix that silently shrinks would pass for a green run).
samba-chroots:
	@command -v debootstrap >/dev/null 2>&1 || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	@$(MAKE) -s -j4 $(addprefix chroot-,$(CHROOT_SUITES))

samba-chroot: samba-chroots

chroot-%:
	@root=$(CHROOT_BASE)$*; log=/tmp/smbsession-debootstrap-$*.log; \
	if [ ! -x $$root/usr/sbin/smbd ]; then \
	  echo "building Samba of Debian $* in $$root with debootstrap (log: $$log)"; \
	  rm -rf $$root.part $$root.failed; \
	  if [ $* = trixie-backports ]; then \
	    ok=1; debootstrap --variant=minbase --include=python3-cffi-backend trixie $$root.part >$$log 2>&1 && \
	    sed -n 's/ trixie main/ trixie-backports main/p' $$root.part/etc/apt/sources.list \
	      >$$root.part/etc/apt/sources.list.d/backports.list && \
	    chroot $$root.part apt-get update -qq >>$$log 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive chroot $$root.part apt-get install -y -qq -t trixie-backports \
	      samba smbclient python3-samba tdb-tools >>$$log 2>&1 || ok=0; \
	  else \
	    ok=1; debootstrap --variant=minbase --include=$(CHROOT_PACKAGES)$(CHROOT_EXTRA_$*) $* $$root.part \
	      >$$log 2>&1 || ok=0; \
	  fi; \
	  if [ $$ok = 1 ] && chroot $$root.part /usr/sbin/smbd -V >>$$log 2>&1; then \
	    mv $$root.part $$root; \
	  else \
	    { echo "debootstrap of $* failed:"; tail -5 $$log; } >$$root.failed; \
	    echo "debootstrap of $* failed (see $$log): the tests of that release will fail"; \
	  fi; \
	fi

# The domain lab (smbsession lab start --domain): a Samba AD DC, winbind, Kerberos tools.
# libnss-winbind's postinst adds winbind to /etc/nsswitch.conf and krb5-config may write
# /etc/krb5.conf: both host files end as they were (the lab gives each server its own
# copies in a private mount namespace).
DOMAIN_PACKAGES := samba-ad-dc samba-ad-provision winbind libnss-winbind krb5-user
domain-deps:
	@missing=""; \
	for pkg in $(DOMAIN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or: sudo apt-get install$$missing)"; exit 1; fi; \
	  backup=$$(mktemp -d /tmp/smbsession-etc.XXXXXX); \
	  for f in nsswitch.conf krb5.conf; do [ -e /etc/$$f ] && cp -p /etc/$$f $$backup/$$f; done; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing >/dev/null || \
	    { apt-get update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing >/dev/null; }; }; \
	  rc=$$?; \
	  for f in nsswitch.conf krb5.conf; do \
	    if [ -e $$backup/$$f ]; then cp -p $$backup/$$f /etc/$$f; else rm -f /etc/$$f; fi; \
	  done; \
	  rm -rf $$backup; \
	  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now samba-ad-dc winbind >/dev/null 2>&1 || true; fi; \
	  exit $$rc; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || { apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }

$(STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e '.[lab]'
	touch $(DEMO_STAMP)

venv: $(STAMP)

clean:
	-$(BIN)/smbsession lab stop $(LAB_ARGS)
	-$(BIN)/smbsession lab stop --domain
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
	@for s in $(CHROOT_SUITES); do root=/var/tmp/smbsession-$$s; \
	  umount $$root/proc $$root/dev 2>/dev/null; \
	  if mountpoint -q $$root/proc || mountpoint -q $$root/dev; then \
	    echo "$$root still has mounts: not removed"; \
	  else rm -rf --one-file-system $$root $$root.failed; fi; done
