/* temporary */ int vqm_convert_placeholder_(void); int vqm_convert_placeholder_(void) { return 0; }
