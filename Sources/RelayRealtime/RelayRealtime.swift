// RelayRealtime: see SPEC.md
