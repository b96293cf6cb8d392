import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `GET /event`, the edge's hot route, answered inside the connection's pipeline right behind the HTTP/1.1 decoder,
/// on the connection's event loop: no task, no async stream, no router, no conversion to HTTP types. It answers with
/// ``EdgeServer/answerEvent(_:)``, the handler Hummingbird's route uses, and writes the headers Hummingbird would
/// (its `Date` included), so the answer is the same either way. Every other request goes on to Hummingbird.
///
/// Answers leave in request order (HTTP/1.1 pipelining): while a request handed to Hummingbird has not been answered
/// in full, the requests behind it go to Hummingbird too. So do the rare `/event` requests whose handling
/// Hummingbird shapes itself: `Connection: close` (it closes after the answer), HTTP/1.0, a `#` in the target.
final class EventFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let edge: EdgeServer
    /// Requests handed to Hummingbird whose answer has not been written in full.
    private var handedOn = 0
    /// A request taken here whose end has not been read yet (its body, if any, is dropped as Hummingbird drops it).
    private var taken: HTTPRequestHead?
    private var unflushed = false
    private var date = HTTPDate()

    init(edge: EdgeServer) {
        self.edge = edge
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if handedOn == 0, taken == nil, Self.eventQuery(head) != nil {
                taken = head
                return
            }
            handedOn += 1
        case .body:
            if taken != nil { return }
        case .end:
            if let head = taken {
                taken = nil
                answer(head, context: context)
                return
            }
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { handedOn = max(0, handedOn - 1) }
        context.write(data, promise: promise)
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let cookies = head.headers["cookie"]
        let origins = head.headers["origin"]
        let reply = edge.answerEvent(EventCall(
            query: Self.eventQuery(head) ?? "", body: nil,
            cookieHeader: cookies.isEmpty ? nil : cookies.joined(separator: "; "),
            authority: head.headers.first(name: "host"),
            origin: origins.isEmpty ? nil : origins.joined(separator: ", ")))
        var headers = HTTPHeaders()
        headers.reserveCapacity(reply.headers.count + 1)
        for field in reply.headers { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Date", value: date.now())
        let status = HTTPResponseStatus(statusCode: reply.status.code, reasonPhrase: reply.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(reply.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        unflushed = true
    }

    /// The query of a request this path answers (empty when there is none); nil for every other request.
    static func eventQuery(_ head: HTTPRequestHead) -> Substring? {
        guard head.method == .GET, head.version == .http1_1 else { return nil }
        let target = Substring(head.uri)
        guard target.hasPrefix("/event") else { return nil }
        let rest = target.dropFirst(6)
        guard rest.isEmpty || rest.first == "?", !rest.utf8.contains(UInt8(ascii: "#")) else { return nil }
        if let connection = head.headers.first(name: "connection"), connection.lowercased().contains("close") {
            return nil
        }
        return rest.dropFirst()
    }
}

/// The `Date` header value (IMF-fixdate, RFC 9110 §5.6.7), formatted once a second.
struct HTTPDate {
    private var second = -1
    private var text = ""

    mutating func now() -> String {
        let seconds = time(nil)
        if seconds != second {
            second = seconds
            text = Self.format(seconds)
        }
        return text
    }

    static func format(_ seconds: Int) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
