"""The kit's checks of a provisioned host (testinfra): run by `devkit verify` against this
machine or an inventory's hosts, and by the test suite against its own stack (tests/infra)."""
