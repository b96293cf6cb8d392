// RelayPixelAudit: see SPEC.md
