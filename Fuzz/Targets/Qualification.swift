// libFuzzer target: the qualification decoder (SPEC §2), the first code every record from Kafka meets. Built by
// bench/fuzz.sh against an instrumented RelayCore.
//
// Any bytes either decode or are malformed (never a crash or a trap); what decodes, encoded again, decodes to the
// same qualification.
import RelayCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQualification(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let qualification = try? QualificationDecoder.decode(bytes) else { return 0 }
    let again = qualification.jsonBytes()
    guard let reread = try? QualificationDecoder.decode(again) else {
        fatalError("an event it accepted, once encoded, is malformed: \(String(decoding: again, as: UTF8.self))")
    }
    precondition(reread == qualification, "encode/decode changed the event")
    return 0
}
