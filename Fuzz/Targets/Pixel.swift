// libFuzzer target: the pixel contract (SPEC §6) as relay-pixel-audit and relayctl read it from Kafka: the pixel
// event decoder, its field-sparing twin (PixelSighting) and the audit report decoder. Built by bench/fuzz.sh against
// an instrumented RelayCore.
//
// Any bytes either decode or are malformed (never a crash or a trap); the two pixel decoders agree on every input;
// an event or a report that decodes, encoded again, decodes to the same value; merging a decoded report with itself
// saturates instead of trapping.
import RelayCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPixel(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let event = try? PixelEvent.decode(bytes)
    let sighting = try? PixelSighting.decode(bytes)
    precondition((event == nil) == (sighting == nil), "the event and sighting decoders disagree")
    if let event {
        precondition(PixelSighting(event) == sighting, "the sighting differs from the event's")
        guard let again = try? PixelEvent.decode(event.jsonBytes()) else {
            fatalError("an event it accepted, once encoded, is malformed: \(String(decoding: event.jsonBytes(), as: UTF8.self))")
        }
        precondition(again == event, "encode/decode changed the event")
    }
    if let report = try? AuditReport.decode(bytes) {
        guard let again = try? AuditReport.decode(report.jsonBytes()) else {
            fatalError("a report it accepted, once encoded, is malformed")
        }
        precondition(again.fired == report.fired && again.received == report.received, "encode/decode changed the report")
        _ = AuditReport.merged([report, report, report], maxLossRate: 0.1)
    }
    return 0
}
