"""This machine's measurements as estimates use them: the load during a run (and whether the
run was quiet enough to trust) and the choice of stored runs behind the host's bandwidth and
compute. Below `forgeplanner.host` (which reads them) and above the store (which keeps them)."""
