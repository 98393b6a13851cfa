# docs: man pages (POD sources, pod2man), the runbook and the
# architecture notes.
EXTRA_DIST += \
	docs/virt-qed-migrate.pod \
	docs/virt-qed-migrate-hook.pod \
	docs/runbook.md \
	docs/architecture.md \
	$(NULL)

# The man pages are built by pod2man and shipped pre-built in the release
# tarball, so a host without pod2man still installs them.
if HAVE_MANS
dist_man_MANS += \
	docs/virt-qed-migrate.1 \
	docs/virt-qed-migrate-hook.8 \
	$(NULL)
endif
MAINTAINERCLEANFILES = \
	docs/virt-qed-migrate.1 \
	docs/virt-qed-migrate-hook.8 \
	$(NULL)

POD2MAN_ARGS = \
	--center="virt-qed-migrate" \
	--release="$(PACKAGE_NAME)-$(PACKAGE_VERSION)" \
	--date="2026-11-25" \
	$(NULL)

docs/virt-qed-migrate.1: docs/virt-qed-migrate.pod
	$(AM_V_GEN)$(MKDIR_P) docs && \
	test "x$(POD2MAN)" != xno || { echo "pod2man is needed to build $@" >&2; exit 1; } && \
	$(POD2MAN) $(POD2MAN_ARGS) --section=1 --name=VIRT-QED-MIGRATE \
	    $(srcdir)/docs/virt-qed-migrate.pod > $@.tmp && mv -f $@.tmp $@

docs/virt-qed-migrate-hook.8: docs/virt-qed-migrate-hook.pod
	$(AM_V_GEN)$(MKDIR_P) docs && \
	test "x$(POD2MAN)" != xno || { echo "pod2man is needed to build $@" >&2; exit 1; } && \
	$(POD2MAN) $(POD2MAN_ARGS) --section=8 --name=VIRT-QED-MIGRATE-HOOK \
	    $(srcdir)/docs/virt-qed-migrate-hook.pod > $@.tmp && mv -f $@.tmp $@

# The RelaxNG schema of the --report XML (in EXTRA_DIST via xml/local.mk),
# installed for the administrators' own checks with xmllint --relaxng.
schemadir = $(pkgdatadir)
schema_DATA = xml/report.rng
