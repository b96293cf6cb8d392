import RelayEncoding

/// Why a qualification event was rejected; `reason` goes to the dead-letter header `relay.error`.
public typealias MalformedEvent = MalformedInput
