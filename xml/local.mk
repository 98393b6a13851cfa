# xml: the RelaxNG schema of the --report XML, and the pool and domain
# templates used by the tests (tests/libvirtd.sh) and the demo.
EXTRA_DIST += \
	xml/report.rng \
	xml/domain-tcg.xml.in \
	xml/pool-dir.xml.in \
	xml/testnode.xml.in \
	$(NULL)
