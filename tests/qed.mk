# tests for qed
