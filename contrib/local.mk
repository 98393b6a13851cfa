# contrib: bash completion and the RPM spec (debian/ is in EXTRA_DIST too).
bashcomp_DATA = contrib/virt-qed-migrate
CLEANFILES += contrib/virt-qed-migrate
EXTRA_DIST += \
	contrib/virt-qed-migrate.bash \
	contrib/virt-qed-migrate.spec \
	contrib/virt-qed-migrate.rpmlintrc \
	debian/changelog \
	debian/control \
	debian/copyright \
	debian/rules \
	debian/source/format \
	debian/virt-qed-migrate.docs \
	$(NULL)

# bash-completion loads completions by command name.
contrib/virt-qed-migrate: contrib/virt-qed-migrate.bash
	$(AM_V_GEN)$(MKDIR_P) contrib && cp $(srcdir)/contrib/virt-qed-migrate.bash $@
