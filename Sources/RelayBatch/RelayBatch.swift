// RelayBatch: see SPEC.md
