import RelayCore
import Metrics

/// The audit's Prometheus metrics (besides the runtime's): per destination, pixels fired, received, lost (at
/// window close, less the late receipts that later arrive), late/duplicate/unmatched receipts, the loss rate of the
/// latest closed window (merged over partitions), whether it alerts, and how many windows alerted.
enum PixelAuditMetrics {
    static func record(_ deltas: [Int64: AuditDeltas]) {
        for (destination, d) in deltas {
            let dims = [("destination", String(destination))]
            if d.fired > 0 { Counter(label: "relay_pixel_audit_fired_total", dimensions: dims).increment(by: d.fired) }
            if d.received > 0 {
                Counter(label: "relay_pixel_audit_received_total", dimensions: dims).increment(by: d.received)
            }
            if d.lost > 0 { Counter(label: "relay_pixel_audit_lost_total", dimensions: dims).increment(by: d.lost) }
            if d.late > 0 { Counter(label: "relay_pixel_audit_late_receipts_total", dimensions: dims).increment(by: d.late) }
            if d.duplicate > 0 {
                Counter(label: "relay_pixel_audit_duplicate_receipts_total", dimensions: dims).increment(by: d.duplicate)
            }
            if d.unmatched > 0 {
                Counter(label: "relay_pixel_audit_unmatched_receipts_total", dimensions: dims).increment(by: d.unmatched)
            }
            if d.expired > 0 {
                Counter(label: "relay_pixel_audit_expired_events_total", dimensions: dims).increment(by: d.expired)
            }
            if d.windowsClosed > 0 {
                Counter(label: "relay_pixel_audit_windows_closed_total", dimensions: dims).increment(by: d.windowsClosed)
            }
        }
    }

    static func events(_ count: Int) {
        Counter(label: "relay_pixel_audit_events_total").increment(by: count)
    }

    static func malformed() {
        Counter(label: "relay_pixel_audit_malformed_total").increment()
    }

    static func state(pixels: Int, openWindows: Int) {
        Gauge(label: "relay_pixel_audit_tracked_pixels").record(pixels)
        Gauge(label: "relay_pixel_audit_open_windows").record(openWindows)
    }

    /// One changelog write of `records` records (changes and head).
    static func checkpoint(records: Int, seconds: Double) {
        Counter(label: "relay_pixel_audit_state_writes_total").increment()
        Counter(label: "relay_pixel_audit_state_records_total").increment(by: records)
        Timer(label: "relay_pixel_audit_state_write_seconds").recordSeconds(seconds)
    }

    /// A merged report changed: the loss-rate gauge follows the destination's latest window.
    static func report(_ report: AuditReport, isLatest: Bool, newlyAlerting: Bool) {
        let dims = [("destination", String(report.destinationID))]
        if isLatest {
            Gauge(label: "relay_pixel_audit_loss_rate", dimensions: dims).record(report.lossRate)
            Gauge(label: "relay_pixel_audit_alert", dimensions: dims).record(report.alert ? 1 : 0)
        }
        if newlyAlerting { Counter(label: "relay_pixel_audit_alerts_total", dimensions: dims).increment() }
    }
}
