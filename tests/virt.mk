# tests for virt
