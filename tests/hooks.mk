# tests for hooks
