"""The fleet control plane: device registry, store, audit log and HTTP API."""
