import Testing
@testable import RelayPixelAudit
