import Foundation
import RelayEncoding
import Testing

@Suite struct JSONScannerTests {
    /// Skips one whole value, the way decoders skip unknown keys; throws what the scanner refuses.
    static func skip(_ text: String) throws(MalformedInput) {
        try JSONScanner.scan(Array(text.utf8)) { scanner throws(MalformedInput) in
            try scanner.skipValue(depth: 0)
            scanner.skipWhitespace()
            guard scanner.isAtEnd else { throw scanner.syntaxError("trailing characters") }
        }
    }

    @Test(arguments: [
        #"{"a": [1, -0.5, 2e10, true, false, null, "x\u00e9\n"], "b": {}}"#,
        #"["\ud83d\ude00", "é", "\/"]"#,
        "-9223372036854775808",
    ])
    func acceptsValidJSON(_ text: String) throws {
        try Self.skip(text)
    }

    @Test(arguments: [
        ("nan", "expected a value"),
        ("inf", "expected a value"),
        ("-inf", "expected a digit"),
        ("NaN", "expected a value"),
        (#""\x41""#, "invalid escape"),
        (#""\u12""#, "4 hexadecimal digits"),
        (#""\ud800""#, "unpaired surrogate"),
        ("01", "leading zero"),
        ("1.", "digit after '.'"),
        ("[1,]", "expected a value"),
        (#"{"a" 1}"#, "':'"),
        (#""abc"#, "unterminated string"),
        ("\"a\u{01}\"", "control character"),
    ])
    func refusesWhatJSONForbids(_ text: String, _ reason: String) {
        #expect {
            try Self.skip(text)
        } throws: { error in
            (error as? MalformedInput)?.reason.contains(reason) == true
        }
    }

    @Test func refusesInvalidUTF8() {
        for bytes: [UInt8] in [[0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xFF, 0x22],
                               [0x22, 0xE2, 0x82, 0x22]] {
            #expect(throws: MalformedInput.self) {
                try JSONScanner.scan(bytes) { scanner throws(MalformedInput) in
                    _ = try scanner.scanString()
                }
            }
        }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: JSONScanner.maxDepth + 2) + String(repeating: "]", count: JSONScanner.maxDepth + 2)
        #expect(throws: MalformedInput.self) { try Self.skip(deep) }
    }

    @Test func integersOutsideInt64AreNotIntegers() throws {
        let bytes = Array("9223372036854775808".utf8)
        let number = try JSONScanner.scan(bytes) { scanner throws(MalformedInput) in
            try scanner.scanNumber()
        }
        #expect(number.integer == nil)
    }
}

@Suite struct JSONWriterTests {
    @Test func escapesWhatJSONRequiresAndRoundTrips() throws {
        let text = "a\"b\\c\n\r\t\u{08}\u{0C}\u{01}é😀<>"
        let written = JSONWriter.quoted(text)
        #expect(written == #""a\"b\\c\n\r\t\b\f\u0001é😀<>""#)
        let decoded = try JSONDecoder().decode(String.self, from: Data(written.utf8))
        #expect(decoded == text)
    }

    @Test func htmlSafeEscapesScriptBreakers() {
        #expect(JSONWriter.quoted("</script>\u{2028}", htmlSafe: true) == #""\u003c/script\u003e\u2028""#)
    }

    @Test(arguments: [Int64.min, -1, 0, 7, Int64.max])
    func integersMatchTheStandardLibrary(_ value: Int64) {
        var out: [UInt8] = []
        JSONWriter.appendInteger(value, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == String(value))
    }
}

@Suite struct ByteFormatTests {
    @Test func base64URLRoundTripsAndRefusesForeignBytes() {
        for count in 0..<40 {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text[...]) == bytes)
        }
        #expect(Base64URL.decode("ab+c"[...]) == nil)
        #expect(Base64URL.decode("abcde"[...]) == nil)
    }

    @Test func percentEncodingKeepsOnlyUnreserved() {
        #expect(PercentEncoding.encode("a b/é~") == "a%20b%2F%C3%A9~")
        #expect(PercentEncoding.encode("a/b", keep: { $0 == UInt8(ascii: "/") }) == "a/b")
        #expect(PercentEncoding.decodeFormComponent(Array("a+b%2Fc".utf8)) == "a b/c")
        #expect(PercentEncoding.decodeFormComponent(Array("%4".utf8)) == nil)
        #expect(PercentEncoding.decodeFormComponent(Array("%FF".utf8)) == nil)  // not UTF-8
    }

    @Test func iso8601MatchesFoundationAndParsesBack() {
        let formatter = ISO8601DateFormatter()
        for ms: Int64 in [0, 1_795_982_000_123, -1, 253_402_300_799_000] {
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(ms.quotientAndRemainder(dividingBy: 1000).quotient) - (ms < 0 && ms % 1000 != 0 ? 1 : 0)))
            #expect(Timestamps.iso8601(milliseconds: ms) == expected)
        }
        #expect(Timestamps.parseMilliseconds("2026-11-29T20:13:16Z") == 1_795_983_196_000)
        #expect(Timestamps.parseMilliseconds("42") == 42)
        #expect(Timestamps.parseMilliseconds("soon") == nil)
    }

    @Test func binaryReaderRefusesTruncationAndForgedCounts() throws {
        var writer = BinaryWriter()
        writer.put(Int64.min)
        writer.put(UInt16(7))
        writer.putString("héllo")
        var reader = BinaryReader(writer.bytes, what: "test record")
        #expect(try reader.read(Int64.self) == .min)
        #expect(try reader.read(UInt16.self) == 7)
        #expect(try reader.readString() == "héllo")
        #expect(reader.isAtEnd)
        #expect(throws: MalformedInput.self) { try reader.read(UInt8.self) }

        var forged = BinaryWriter()
        forged.put(UInt32.max)
        var forgedReader = BinaryReader(forged.bytes, what: "test record")
        #expect(throws: MalformedInput.self) { try forgedReader.readCount(elementSize: 8) }
        var shortReader = BinaryReader(forged.bytes, what: "test record")
        #expect(throws: MalformedInput.self) { try shortReader.readBytes() }
    }

    @Test func atomicFileReplacesWholeAndLeavesNoTemporary() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("state.bin")
        try AtomicFile.write(Array("first".utf8), to: target)
        try AtomicFile.write(Array("second".utf8), to: target)
        #expect(try Data(contentsOf: target) == Data("second".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["state.bin"])
    }
}
