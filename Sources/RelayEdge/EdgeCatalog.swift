import RelayCore

/// The `kind: cookie` and `kind: url` destinations of the configuration, prepared once for every `/event`.
struct EdgeCatalog: Sendable {
    struct CookieDestination: Sendable {
        var id: Int
        var settings: CookieSettings
        var table: MappingTable
    }

    struct URLDestination: Sendable {
        var id: Int
        var settings: URLSettings
        var table: MappingTable
        var url: URLTemplate
        var secureURL: URLTemplate
    }

    let cookies: [CookieDestination]
    let urls: [URLDestination]
    /// DPIDs named by `%dpid_<DPID>%` in some URL template: the partner ids the store keeps per user.
    let keptDPIDs: [String]

    init(_ config: RelayConfig) {
        var dpids: [String] = []
        for (_, settings) in config.urlDestinations {
            for dpid in URLTemplate.dpids(in: settings.url) + URLTemplate.dpids(in: settings.secureURL)
            where !dpids.contains(dpid) {
                dpids.append(dpid)
            }
        }
        keptDPIDs = dpids
        cookies = config.cookieDestinations.map { destination, settings in
            CookieDestination(id: destination.id, settings: settings, table: destination.mappingTable)
        }
        urls = config.urlDestinations.map { destination, settings in
            URLDestination(id: destination.id, settings: settings, table: destination.mappingTable,
                           url: URLTemplate(settings.url, keptDPIDs: dpids),
                           secureURL: URLTemplate(settings.secureURL, keptDPIDs: dpids))
        }
    }

    /// Segments that some edge destination maps (at any time).
    var mappedSegments: Set<Int64> {
        var result = Set<Int64>()
        for cookie in cookies { result.formUnion(cookie.table.segments) }
        for url in urls { result.formUnion(url.table.segments) }
        return result
    }

    /// The aliases of the user's segments mapped by `table` now, in the user's order, without duplicates.
    static func aliases(_ table: MappingTable, segments: [UInt32], at now: Int64) -> [String] {
        var result: [String] = []
        for segment in segments {
            for alias in table.aliases(for: Int64(segment), at: now) where !result.contains(alias) {
                result.append(alias)
            }
        }
        return result
    }

    /// The user's state as the store keeps it: realized segments only, partner ids for ``keptDPIDs``.
    func userState(of qualification: Qualification) -> UserState {
        var segments: [UInt32] = []
        segments.reserveCapacity(qualification.segments.count)
        for state in qualification.segments where state.realized {
            // Segment ids beyond 32 bits are not kept (platform ids fit; a mapping of such an id is reported at start).
            if let id = UInt32(exactly: state.id) { segments.append(id) }
        }
        return UserState(region: qualification.region, segments: segments,
                         partnerIDs: keptDPIDs.map { qualification.partnerIDs[$0] })
    }
}
