import Hummingbird
import NIOCore
import RelayCore
import RelayEncoding
import RelayEncoding

/// `GET /report[?destination=7001][&since=<ms or ISO-8601>]`: the merged window reports as a JSON array, by
/// destination then window start; `since` keeps the windows that end after it.
public enum ReportRoutes {
    public static func add<Context: RequestContext>(to router: Router<Context>, book: ReportBook) {
        router.get("/report") { request, _ -> Response in
            var destination: Int64?
            var since: Int64?
            if let text = request.uri.queryParameters.get("destination") {
                guard let value = Int64(text) else { return badRequest("destination: expected a destination id") }
                destination = value
            }
            if let text = request.uri.queryParameters.get("since") {
                guard let value = Timestamps.parseMilliseconds(text) else {
                    return badRequest("since: expected milliseconds since the epoch or ISO-8601")
                }
                since = value
            }
            let body = ReportBook.jsonArray(book.reports(destination: destination, since: since))
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    private static func badRequest(_ message: String) -> Response {
        Response(status: .badRequest, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\"\(message)\"}\n")))
    }
}
