# tests for docs
