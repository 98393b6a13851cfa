/* temporary */ int vqm_virt_placeholder_(void); int vqm_virt_placeholder_(void) { return 0; }
