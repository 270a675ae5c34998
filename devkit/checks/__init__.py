"""The kit's checks of a provisioned host (testinfra): run by `invoke verify` against this
machine or an inventory's hosts, and by the test suite against its own stack (tests/infra)."""
