import ArgumentParser
import Foundation
import RelayCore
import RelayEncoding
import RelayRuntime

/// `relayctl pixel report`: the pixel audit's recent windows per destination, read from `aam.pixel-audit` (the
/// latest report of each destination and window; a correction replaces the earlier one).
struct PixelReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pixel",
        abstract: "Pixel-sync audit.",
        subcommands: [Report.self])

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the pixel loss per destination and window; --chart draws the loss rate over time.")

        @OptionGroup var options: ConfigOption

        @Option(help: "Only this destination id.")
        var destination: Int64?

        @Option(help: "The most recent windows per destination to show.")
        var limit: Int = 20

        @Flag(help: "Draw each destination's loss rate over time as a bar chart.")
        var chart = false

        func run() async throws {
            let config = try options.load()
            let book = ReportBook(thresholds: LossThresholds(config: config))
            let topic = config.kafka.topics.pixelAudit
            do {
                _ = try await AuditTopicReader.read(topic: topic, client: try CLI.client(config), book: book,
                                                    logger: CLI.logger)
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError("cannot read \(topic) at \(config.kafka.bootstrapServers): \(error)")
            }
            let reports = book.reports(destination: destination)
            guard !reports.isEmpty else {
                print(destination.map { "no pixel audit reports for destination \($0) on \(topic)" }
                    ?? "no pixel audit reports on \(topic) yet")
                return
            }
            let names = Dictionary(config.destinations.map { (Int64($0.id), $0.name) }, uniquingKeysWith: { a, _ in a })
            var byDestination: [Int64: [AuditReport]] = [:]
            for report in reports { byDestination[report.destinationID, default: []].append(report) }
            let recent = byDestination.keys.sorted().flatMap { byDestination[$0]!.suffix(max(1, limit)) }
            print(PixelReportFormat.table(recent, names: names, thresholds: book.thresholds))
            if chart {
                for id in byDestination.keys.sorted() {
                    print("")
                    print(PixelReportFormat.chart(Array(byDestination[id]!.suffix(max(1, limit))),
                                                  title: "\(id) \(names[id] ?? "")",
                                                  threshold: book.thresholds.maxLossRate(id)))
                }
            }
        }
    }
}

enum PixelReportFormat {
    static func table(_ reports: [AuditReport], names: [Int64: String], thresholds: LossThresholds) -> String {
        let header = ["DEST", "NAME", "WINDOW START (UTC)", "END", "FIRED", "RECEIVED", "LOST", "LOSS", "MAX", "LATE",
                      "DUP", "UNMATCHED", "ALERT"]
        var rows = [header]
        for r in reports {
            let end = Timestamps.iso8601(milliseconds: r.windowEnd)
            rows.append([String(r.destinationID), names[r.destinationID] ?? "-",
                         Timestamps.iso8601(milliseconds: r.windowStart), String(end.dropFirst(11)),
                         String(r.fired), String(r.received), String(r.lost), percent(r.lossRate),
                         percent(thresholds.maxLossRate(r.destinationID)), String(r.lateReceipts),
                         String(r.duplicateReceipts), String(r.unmatchedReceipts), r.alert ? "ALERT" : "ok"])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max()! }
        let numeric: Set<Int> = [4, 5, 6, 7, 8, 9, 10, 11]
        return rows.map { row in
            row.indices.map { column in
                let cell = row[column]
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return numeric.contains(column) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    /// One bar per window: `11-29 14:20:00 |██████▍    ┆   | 12.8%`, the threshold marked `┆` (`┃` under a bar), `!`
    /// on alerts.
    static func chart(_ reports: [AuditReport], title: String, threshold: Double, width: Int = 40) -> String {
        let top = max(threshold * 1.5, (reports.map(\.lossRate).max() ?? 0) * 1.1, 0.01)
        var lines = ["loss rate, destination \(title) (max \(percent(threshold)), full bar = \(percent(top)))"]
        let mark = min(width - 1, Int((threshold / top * Double(width)).rounded()))
        for r in reports {
            let eighths = Int((r.lossRate / top * Double(width * 8)).rounded())
            var bar = String(repeating: "█", count: eighths / 8)
            if eighths % 8 > 0 { bar.append(["▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8 - 1]) }
            var cells = Array(bar.padding(toLength: width, withPad: " ", startingAt: 0))
            cells[mark] = cells[mark] == " " ? "┆" : "┃"  // the threshold, visible on and off the bar
            let time = String(Timestamps.iso8601(milliseconds: r.windowStart).dropFirst(5).prefix(14))
                .replacingOccurrences(of: "T", with: " ")
            lines.append("\(time) |\(String(cells))| \(percent(r.lossRate))\(r.alert ? " !" : "")")
        }
        return lines.joined(separator: "\n")
    }

    static func percent(_ rate: Double) -> String { String(format: "%.1f%%", rate * 100) }
}
