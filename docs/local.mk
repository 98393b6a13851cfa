# docs: man pages (POD sources, pod2man), the runbook and the
# architecture notes.
EXTRA_DIST += \
	docs/virt-qed-migrate.pod \
	docs/virt-qed-migrate-hook.pod \
	docs/runbook.md \
	docs/architecture.md \
	$(NULL)

if HAVE_POD2MAN
man_MANS += \
	docs/virt-qed-migrate.1 \
	docs/virt-qed-migrate-hook.8 \
	$(NULL)
CLEANFILES += \
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
	$(POD2MAN) $(POD2MAN_ARGS) --section=1 --name=VIRT-QED-MIGRATE \
	    $(srcdir)/docs/virt-qed-migrate.pod > $@.tmp && mv -f $@.tmp $@

docs/virt-qed-migrate-hook.8: docs/virt-qed-migrate-hook.pod
	$(AM_V_GEN)$(MKDIR_P) docs && \
	$(POD2MAN) $(POD2MAN_ARGS) --section=8 --name=VIRT-QED-MIGRATE-HOOK \
	    $(srcdir)/docs/virt-qed-migrate-hook.pod > $@.tmp && mv -f $@.tmp $@
endif

# The RelaxNG schema of the --report XML (in EXTRA_DIST via xml/local.mk),
# installed for the administrators' own checks with xmllint --relaxng.
schemadir = $(pkgdatadir)
schema_DATA = xml/report.rng
