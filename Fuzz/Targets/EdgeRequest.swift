// libFuzzer target: everything relay-edge parses from a caller it does not know. Built by bench/fuzz.sh together
// with the RelayEdge files it exercises (one module, so internal names are reachable).
//
// Each input is tried as a query string / form body, a Cookie header, a signed /px URL, and a /px/receipts body
// with its credential headers. Besides "no crash, no trap", it checks properties: what the edge signs it verifies
// unchanged, and a receipt is accepted only with the destination's token and only for that destination's ids.
import Foundation
import HTTPTypes
import RelayCore
import RelayEncoding

private let signer = PixelSigner(secret: "fuzz-redirect-key")
private let receipts = PixelReceipts(credentials: [7001: .init(token: "fuzz-token")])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEdgeRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)

    // Query string and form body, then the parameters of /event (with the input as the Cookie header too).
    if let form = PercentEncoding.decodeForm(bytes) {
        _ = try? EventParameters.parse(form, cookieHeader: text)
        // Encoding the decoded pairs again gives a form that decodes to the same pairs.
        let again = form.map { PercentEncoding.encode($0.0) + "=" + PercentEncoding.encode($0.1) }
            .joined(separator: "&")
        let reparsed = PercentEncoding.decodeForm(Array(again.utf8))
        precondition(reparsed.map { $0.map { [$0.0, $0.1] } } == form.map { [$0.0, $0.1] }, "form round trip")
    }
    _ = EventParameters.cookieValue(named: "aam_uuid", in: text)
    _ = EventParameters.sanitizedHost(text)
    _ = CORSPolicy(origins: ["https://pub.example", "*"]).grant(origin: text)

    // /px/<pixel id>?<query>: any input verifies only if it carries this edge's signature; what the edge signs
    // verifies, and gives back exactly the query it signed.
    let pixelID = String(text.prefix { $0 != "?" })
    let query = String(text.dropFirst(pixelID.count + 1))
    if let verified = signer.verify(pixelID: pixelID, query: query) {
        precondition(signer.sign(pixelID: pixelID, query: String(verified)) == query, "verified a query it did not sign")
    }
    let issued = signer.sign(pixelID: pixelID, query: text)
    precondition(signer.verify(pixelID: pixelID, query: issued).map(String.init) == text, "own signature refused")

    // POST /px/receipts: the body, first without, then with the credential.
    var headers: HTTPFields = [.contentType: "application/json"]
    if (try? receipts.accept(headers: headers, body: bytes)) != nil { fatalError("receipt without credential") }
    headers[.authorization] = "Bearer wrong"
    if (try? receipts.accept(headers: headers, body: bytes)) != nil { fatalError("receipt with a wrong token") }
    headers[.authorization] = "Bearer fuzz-token"
    if let accepted = try? receipts.accept(headers: headers, body: bytes) {
        precondition(accepted.destinationID == 7001, "receipt for a destination without a credential")
        precondition(accepted.pixelIDs.allSatisfy { PixelEvent.destination(inPixelID: $0) == 7001 },
                     "receipt for another destination's pixel")
        precondition(accepted.pixelIDs.count <= PixelReceipts.maxPixelIDs)
    }
    return 0
}
