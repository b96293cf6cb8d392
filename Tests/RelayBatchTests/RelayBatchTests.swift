import Testing
@testable import RelayBatch
