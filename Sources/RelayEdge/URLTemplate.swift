import RelayCore
import RelayEncoding

/// A `kind: url` template (`url`, `secure_url`) split once into literal text and macros (SPEC §6).
struct URLTemplate: Sendable, Hashable {
    enum Macro: Sendable, Hashable {
        case alias, did, rnd, timestamp, region, httpProto
        /// `%dpid_<DPID>%`: index into ``SegmentStore/keptDPIDs``.
        case dpid(index: Int)
    }

    enum Part: Sendable, Hashable {
        case literal([UInt8])
        case macro(Macro)
    }

    let parts: [Part]

    /// The DPIDs named by `%dpid_<DPID>%` in `template`, in order of appearance.
    static func dpids(in template: String) -> [String] {
        var result: [String] = []
        for token in tokens(template) {
            if case .macro(let name) = token, name.hasPrefix("dpid_") {
                let dpid = String(name.dropFirst(5))
                if !dpid.isEmpty, dpid.allSatisfy(\.isASCII), dpid.allSatisfy(\.isNumber) { result.append(dpid) }
            }
        }
        return result
    }

    /// - Parameter keptDPIDs: positions of `%dpid_<DPID>%` values in a user's partner ids.
    init(_ template: String, keptDPIDs: [String]) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        func flush() {
            if !literal.isEmpty { parts.append(.literal(literal)) }
            literal = []
        }
        for token in Self.tokens(template) {
            switch token {
            case .text(let text):
                literal.append(contentsOf: text.utf8)
            case .macro(let name):
                let macro: Macro? =
                    switch name {
                    case "alias": .alias
                    case "did": .did
                    case "rnd": .rnd
                    case "timestamp": .timestamp
                    case "region": .region
                    case "http_proto": .httpProto
                    default:
                        name.hasPrefix("dpid_")
                            ? keptDPIDs.firstIndex(of: String(name.dropFirst(5))).map { .dpid(index: $0) } : nil
                    }
                if let macro {
                    flush()
                    parts.append(.macro(macro))
                } else {
                    literal.append(contentsOf: "%\(name)%".utf8)
                }
            }
        }
        flush()
        self.parts = parts
    }

    private enum Token {
        case text(String)
        case macro(String)
    }

    /// A known macro name: those of ``URLSettings/macros`` and `dpid_<digits>`.
    private static func isMacroName(_ name: Substring) -> Bool {
        URLSettings.macros.contains(String(name))
            || (name.hasPrefix("dpid_") && name.count > 5 && name.dropFirst(5).allSatisfy { $0.isASCII && $0.isNumber })
    }

    /// `%name%` with a known macro name is a macro; any other `%` is text (e.g. an already encoded `%2F`).
    private static func tokens(_ template: String) -> [Token] {
        var tokens: [Token] = []
        var rest = Substring(template)
        while let start = rest.firstIndex(of: "%") {
            let afterStart = rest.index(after: start)
            if let end = rest[afterStart...].firstIndex(of: "%"), isMacroName(rest[afterStart..<end]) {
                tokens.append(.text(String(rest[..<start])))
                tokens.append(.macro(String(rest[afterStart..<end])))
                rest = rest[rest.index(after: end)...]
            } else {
                tokens.append(.text(String(rest[...start])))
                rest = rest[afterStart...]
            }
        }
        tokens.append(.text(String(rest)))
        return tokens
    }

    /// The values macros take for one URL.
    struct Values {
        /// Already percent-encoded (aliases joined by the encoded delimiter when serialized).
        var encodedAlias: String
        var uuid: String
        var random: UInt32
        var timestamp: Int64
        var region: Int?
        var secure: Bool
        var partnerIDs: [String?]
    }

    /// The URL, or nil when a `%dpid_<DPID>%` has no partner id for the user.
    func render(_ values: Values) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        for part in parts {
            switch part {
            case .literal(let bytes): out.append(contentsOf: bytes)
            case .macro(.alias): out.append(contentsOf: values.encodedAlias.utf8)
            case .macro(.did): PercentEncoding.append(values.uuid, to: &out)
            case .macro(.rnd): JSONWriter.appendInteger(values.random, to: &out)
            case .macro(.timestamp): JSONWriter.appendInteger(values.timestamp, to: &out)
            case .macro(.region): if let region = values.region { JSONWriter.appendInteger(region, to: &out) }
            case .macro(.httpProto): out.append(contentsOf: (values.secure ? "https" : "http").utf8)
            case .macro(.dpid(let index)):
                guard index < values.partnerIDs.count, let id = values.partnerIDs[index] else { return nil }
                PercentEncoding.append(id, to: &out)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
