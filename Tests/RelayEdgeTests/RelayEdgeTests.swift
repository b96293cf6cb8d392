import Testing
@testable import RelayEdge
