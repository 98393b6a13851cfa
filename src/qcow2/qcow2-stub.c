/* temporary */ int vqm_qcow2_placeholder_(void); int vqm_qcow2_placeholder_(void) { return 0; }
