// libFuzzer target: the relay.yaml loader (SPEC §3), run by every executable and by `relayctl validate` on files
// operators write by hand. Built by bench/fuzz.sh against an instrumented RelayCore.
//
// Any text either loads or is refused with at least one problem, each with a path or a position; never a crash or a
// trap. A secret's value never shows in the problems.
import RelayCore

private let environment = ["FUZZ_SECRET": "fuzz-secret-value-7f3a"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigLoader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try RelayConfig.parse(yaml: text, environment: environment, checkSecrets: true)
    } catch {
        precondition(!error.problems.isEmpty, "refused without a problem")
        precondition(!"\(error)".contains("fuzz-secret-value-7f3a"), "a secret's value in the problems")
    }
    return 0
}
