extension SigningSettings {
    /// `signing: {algorithm, header, key_env | key_file}`, read the same way wherever a body is signed (realtime
    /// destinations, HTTP batch outputs).
    static func read(_ reader: MappingReader) -> SigningSettings? {
        let algorithm: SigningAlgorithm? = reader.choice("algorithm", "algorithm")
        let header = reader.string("header")
        if let header, !RealtimeSettings.isHeaderName(header) { reader.report("header", "not a valid HTTP header name") }
        let key = reader.secret("key")
        reader.reportUnknownKeys()
        guard let key else { return nil }
        return SigningSettings(algorithm: algorithm ?? .sha256, header: header ?? "X-Signature", key: key)
    }
}
