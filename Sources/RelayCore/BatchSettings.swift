import Foundation

/// `kind: batch` (SPEC §5): accumulates qualifications and delivers files at each cut.
public struct BatchSettings: Sendable, Hashable {
    /// The cut period; cut times are the multiples of `every` since the epoch, shifted by `at`.
    public var every: RelayDuration
    /// UTC alignment of the cuts (`"14:00"`).
    public var at: TimeOfDay?
    /// How long an idle partition waits before its cut is made.
    public var grace: RelayDuration
    public var mode: BatchMode
    /// Whose id starts each line; 0 = the platform's `uuid`.
    public var masterDPID: Int
    /// The partner alias in file names; defaults to the destination's name. Letters, digits, `.` and `-` only, so
    /// that the `_`-separated file name stays readable.
    public var pidAlias: String
    public var gzip: Bool
    /// No part is larger than this.
    public var maxFileBytes: Int
    public var output: BatchOutput

    public init(
        every: RelayDuration = .hours(24),
        at: TimeOfDay? = nil,
        grace: RelayDuration = .seconds(30),
        mode: BatchMode = .iter,
        masterDPID: Int = 0,
        pidAlias: String,
        gzip: Bool = true,
        maxFileBytes: Int = 1_073_741_824,
        output: BatchOutput
    ) {
        self.every = every
        self.at = at
        self.grace = grace
        self.mode = mode
        self.masterDPID = masterDPID
        self.pidAlias = pidAlias
        self.gzip = gzip
        self.maxFileBytes = maxFileBytes
        self.output = output
    }

    /// How far the cuts are shifted from the multiples of `every`: `at` reduced modulo `every` (so `every: 6h` with
    /// `at: "14:00"` cuts at 02:00, 08:00, 14:00 and 20:00 UTC).
    public var cutOffset: RelayDuration {
        guard let at, every.milliseconds > 0 else { return .zero }
        return RelayDuration(milliseconds: at.sinceMidnight.milliseconds % every.milliseconds)
    }
}

public enum BatchMode: String, Sendable, Hashable, CaseIterable {
    /// Users whose mapped segments changed since the previous cut, with removals.
    case iter
    /// Every user with at least one realized mapped segment.
    case full
}

/// `output:` of a batch destination. Every output shows a file under its final name only once it is complete.
public enum BatchOutput: Sendable, Hashable {
    /// `{type: dir, path}`: files written atomically into a directory.
    case dir(path: String)
    /// `{type: s3, ...}`: uploaded with AWS Signature V4.
    case s3(S3Output)
    /// `{type: http, url, auth}`: `PUT <url>/<file name>`, with credentials when `auth` is set.
    case http(url: URL, auth: HTTPUploadAuth? = nil)
    /// `{type: sftp, ...}`: uploaded under a temporary name, then renamed into place.
    case sftp(SFTPOutput)

    /// The `<sync_type>` at the start of file names.
    public var syncType: String {
        switch self {
        case .dir: "dir"
        case .s3: "s3"
        case .http: "http"
        case .sftp: "sftp"
        }
    }
}

/// An S3-compatible bucket. Without `accessKey`/`secretKey` the credentials come from the standard AWS chain
/// (environment, web identity, container, instance metadata) when the worker starts uploading.
public struct S3Output: Sendable, Hashable {
    public var bucket: String
    /// Key prefix, e.g. `aam/`; empty by default.
    public var prefix: String
    /// The store's endpoint; `nil` = AWS (`https://s3.<region>.amazonaws.com`).
    public var endpoint: URL?
    public var region: String
    public var accessKey: Secret?
    public var secretKey: Secret?
    /// A session token for temporary static keys (`session_token_env`); only with `accessKey`.
    public var sessionToken: Secret?
    /// `sse:`: server-side encryption asked of the store.
    public var encryption: S3Encryption?
    /// `storage_class:`; `nil` = the bucket's default (STANDARD).
    public var storageClass: String?

    public init(
        bucket: String, prefix: String = "", endpoint: URL? = nil, region: String = "us-east-1",
        accessKey: Secret? = nil, secretKey: Secret? = nil, sessionToken: Secret? = nil,
        encryption: S3Encryption? = nil, storageClass: String? = nil
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.encryption = encryption
        self.storageClass = storageClass
    }

    /// `endpoint`, or AWS's regional endpoint when none is configured.
    public var effectiveEndpoint: URL {
        endpoint ?? URL(string: "https://s3.\(region).amazonaws.com")!
    }

    /// The storage classes S3 accepts on upload.
    public static let storageClasses = [
        "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER",
        "GLACIER_IR", "DEEP_ARCHIVE", "EXPRESS_ONEZONE",
    ]
}

/// `sse: AES256 | aws:kms` with an optional `kms_key_id` (the bucket's default KMS key when absent).
public enum S3Encryption: Sendable, Hashable {
    case aes256
    case kms(keyID: String?)

    /// The `x-amz-server-side-encryption` value.
    public var headerValue: String {
        switch self {
        case .aes256: "AES256"
        case .kms: "aws:kms"
        }
    }
}

/// `auth:` of an HTTP output: exactly one way of proving who uploads.
public enum HTTPUploadAuth: Sendable, Hashable {
    /// `{bearer_env | bearer_file}`: `Authorization: Bearer <token>`.
    case bearer(Secret)
    /// `{basic: {user, password_env | password_file}}`: `Authorization: Basic ...`.
    case basic(user: String, password: Secret)
    /// `{signing: {algorithm, header, key_env | key_file}}`: the realtime destinations' HMAC header, computed over
    /// the exact bytes of the file uploaded.
    case signing(SigningSettings)
}

/// `{type: sftp, host, port, user, path, private_key_file | password_env, known_hosts_file}`.
public struct SFTPOutput: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var user: String
    /// The remote directory the files go into.
    public var path: String
    /// An OpenSSH or PEM private key file; tried before `password`.
    public var privateKeyFile: String?
    /// Password authentication, a fallback for partners that give no key access.
    public var password: Secret?
    /// The server's host key must be listed here; unknown and changed keys are refused.
    public var knownHostsFile: String

    public init(host: String, port: Int = 22, user: String, path: String, privateKeyFile: String? = nil,
                password: Secret? = nil, knownHostsFile: String)
    {
        self.host = host
        self.port = port
        self.user = user
        self.path = path
        self.privateKeyFile = privateKeyFile
        self.password = password
        self.knownHostsFile = knownHostsFile
    }
}

/// A UTC time of day, `"HH:MM"`.
public struct TimeOfDay: Sendable, Hashable, CustomStringConvertible {
    public let hour: Int
    public let minute: Int

    public init?(hour: Int, minute: Int) {
        guard (0...23).contains(hour), (0...59).contains(minute) else { return nil }
        self.hour = hour
        self.minute = minute
    }

    /// Parses `HH:MM` (or `H:MM`).
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let hour = Int(parts[0]), let minute = Int(parts[1])
        else { return nil }
        self.init(hour: hour, minute: minute)
    }

    public var sinceMidnight: RelayDuration { .minutes(Int64(hour * 60 + minute)) }

    public var description: String {
        (hour < 10 ? "0" : "") + "\(hour):" + (minute < 10 ? "0" : "") + "\(minute)"
    }
}
