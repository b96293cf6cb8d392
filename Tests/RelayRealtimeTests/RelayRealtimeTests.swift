import Testing
@testable import RelayRealtime
