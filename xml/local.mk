# xml: the RelaxNG schema of the --report XML.
EXTRA_DIST += \
	xml/report.rng \
	$(NULL)
