import Metrics

/// `relay_batch_*` metrics, per destination.
enum BatchMetrics {
    static func cut(destination: Int, users: Int, lines: Int, skipped: Int, bytes: Int, parts: Int) {
        let d = [("destination", String(destination))]
        Gauge(label: "relay_batch_cut_users", dimensions: d).record(users)
        Gauge(label: "relay_batch_cut_lines", dimensions: d).record(lines)
        Counter(label: "relay_batch_lines_total", dimensions: d).increment(by: lines)
        Counter(label: "relay_batch_skipped_users_total", dimensions: d).increment(by: skipped)
        Counter(label: "relay_batch_bytes_total", dimensions: d).increment(by: bytes)
        Counter(label: "relay_batch_parts_total", dimensions: d).increment(by: parts)
        Counter(label: "relay_batch_partition_cuts_total", dimensions: d).increment()
    }

    static func deliveryAttempt(destination: Int) {
        Counter(label: "relay_batch_delivery_attempts_total", dimensions: [("destination", String(destination))])
            .increment()
    }

    static func deliveryFailure(destination: Int) {
        Counter(label: "relay_batch_delivery_failures_total", dimensions: [("destination", String(destination))])
            .increment()
    }

    /// A cut's `.info` was delivered: the cut is complete at the partner.
    static func cutComplete(destination: Int, cut: Int64) {
        Gauge(label: "relay_batch_last_cut_timestamp_seconds", dimensions: [("destination", String(destination))])
            .record(Double(cut) / 1000)
        Counter(label: "relay_batch_cuts_total", dimensions: [("destination", String(destination))]).increment()
    }

    static func state(destination: Int, users: Int, bytes: Int, pendingUsers: Int) {
        let d = [("destination", String(destination))]
        Gauge(label: "relay_batch_state_users", dimensions: d).record(users)
        Gauge(label: "relay_batch_state_bytes", dimensions: d).record(bytes)
        Gauge(label: "relay_batch_pending_users", dimensions: d).record(pendingUsers)
    }

    /// A changelog write: user records and heads, with their key and value bytes.
    static func changelogWritten(records: Int, bytes: Int) {
        Counter(label: "relay_batch_state_records_written_total").increment(by: records)
        Counter(label: "relay_batch_state_bytes_written_total").increment(by: bytes)
    }

    /// A partition's state restored from the changelog.
    static func restored(records: Int, seconds: Double) {
        Counter(label: "relay_batch_state_records_restored_total").increment(by: records)
        Timer(label: "relay_batch_state_restore_seconds").recordSeconds(seconds)
    }
}
