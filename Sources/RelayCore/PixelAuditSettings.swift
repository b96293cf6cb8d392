/// `pixel_audit:`: how `relay-pixel-audit` joins fired and received pixels.
public struct PixelAuditSettings: Sendable, Hashable {
    /// A receipt counts only within this time of its firing.
    public var auditWindow: RelayDuration
    /// How long after a window closes receipts are still awaited before it is reported.
    public var grace: RelayDuration

    public init(auditWindow: RelayDuration = .minutes(10), grace: RelayDuration = .minutes(1)) {
        self.auditWindow = auditWindow
        self.grace = grace
    }
}
