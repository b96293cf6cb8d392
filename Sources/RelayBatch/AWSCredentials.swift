import AsyncHTTPClient
import Foundation
import RelayEncoding
import NIOCore
import NIOHTTP1
import RelayRuntime

/// One set of AWS credentials. Temporary ones carry a session token (signed as `x-amz-security-token`) and the time
/// they expire. Printing them shows the access key id only.
struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    var accessKeyID: String
    var secretAccessKey: String
    var sessionToken: String? = nil
    var expiration: Date? = nil
    /// Where they came from, for logs and errors (`environment`, `web identity`, ...).
    var source: String

    var description: String { "AWSCredentials(\(accessKeyID), from \(source))" }
}

/// Hands out AWS credentials to the S3 client: fixed keys from the configuration, or the standard AWS chain when the
/// configuration names none. The chain is walked in the SDKs' order, the first source configured wins:
/// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 2. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` through STS `AssumeRoleWithWebIdentity` (EKS IRSA, workload
///    identity federation); STS at `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the regional endpoint;
/// 3. `AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI` (ECS, EKS Pod Identity), with
///    `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`;
/// 4. the instance metadata service, IMDSv2 only (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, off with
///    `AWS_EC2_METADATA_DISABLED=true`).
/// Temporary credentials are renewed `refreshMargin` before they expire; concurrent callers share one renewal.
actor AWSCredentialProvider {
    enum Source: Sendable {
        case fixed(AWSCredentials)
        case chain(environment: [String: String])
    }

    let source: Source
    let region: String
    let http: HTTPClient
    let now: @Sendable () -> Date
    let refreshMargin: TimeInterval
    private var current: AWSCredentials?
    private var renewal: Task<AWSCredentials, any Error>?

    init(_ source: Source, region: String, http: HTTPClient, refreshMargin: TimeInterval = 300,
         now: @escaping @Sendable () -> Date = { Date() })
    {
        self.source = source
        self.region = region
        self.http = http
        self.refreshMargin = refreshMargin
        self.now = now
        if case .fixed(let credentials) = source { current = credentials }
    }

    func credentials() async throws -> AWSCredentials {
        if let current, !isDue(current) { return current }
        if let renewal { return try await renewal.value }
        let task = Task { [source, region, http] in
            guard case .chain(let environment) = source else { throw BatchError("fixed AWS credentials expired") }
            return try await AWSCredentialChain(environment: environment, region: region, http: http).resolve()
        }
        renewal = task
        defer { renewal = nil }
        let fresh = try await task.value
        current = fresh
        return fresh
    }

    private func isDue(_ credentials: AWSCredentials) -> Bool {
        guard let expiration = credentials.expiration else { return false }
        return now().addingTimeInterval(refreshMargin) >= expiration
    }
}

/// One walk of the standard chain (see ``AWSCredentialProvider``).
struct AWSCredentialChain {
    let environment: [String: String]
    let region: String
    let http: HTTPClient

    func resolve() async throws -> AWSCredentials {
        if let key = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") {
            return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"),
                                  expiration: nil, source: "environment")
        }
        if let tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE"), let role = value("AWS_ROLE_ARN") {
            return try await webIdentity(tokenFile: tokenFile, role: role)
        }
        if value("AWS_CONTAINER_CREDENTIALS_FULL_URI") != nil || value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != nil {
            return try await container()
        }
        if value("AWS_EC2_METADATA_DISABLED")?.lowercased() != "true" {
            do {
                return try await instanceMetadata()
            } catch {
                throw BatchError("no AWS credentials: no access_key_env/secret_key_env, no AWS_ACCESS_KEY_ID, "
                    + "AWS_WEB_IDENTITY_TOKEN_FILE or AWS_CONTAINER_CREDENTIALS_*_URI, and instance metadata "
                    + "answered: \(error)")
            }
        }
        throw BatchError("no AWS credentials: no access_key_env/secret_key_env, no AWS_ACCESS_KEY_ID, "
            + "AWS_WEB_IDENTITY_TOKEN_FILE or AWS_CONTAINER_CREDENTIALS_*_URI, and instance metadata is disabled")
    }

    private func value(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    // MARK: Web identity

    private func webIdentity(tokenFile: String, role: String) async throws -> AWSCredentials {
        // Read at every renewal: the platform rotates the token in place.
        guard let data = FileManager.default.contents(atPath: tokenFile),
            let token = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
            !token.isEmpty
        else { throw BatchError("web identity: cannot read the token file \(tokenFile)") }
        let endpoint = value("AWS_ENDPOINT_URL_STS") ?? value("AWS_ENDPOINT_URL") ?? "https://sts.\(region).amazonaws.com"
        let session = value("AWS_ROLE_SESSION_NAME") ?? "relay-batch-\(Int(Date().timeIntervalSince1970))"
        let form = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", role),
                    ("RoleSessionName", session), ("WebIdentityToken", token)]
            .map { "\($0.0)=\(S3Client.encode($0.1, keepSlash: false))" }.joined(separator: "&")
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: form))
        let (status, body) = try await fetch(request, what: "STS AssumeRoleWithWebIdentity")
        let text = String(decoding: body, as: UTF8.self)
        guard (200..<300).contains(status) else {
            let code = S3Client.element("Code", in: text) ?? ""
            throw BatchError("STS AssumeRoleWithWebIdentity for \(role): HTTP \(status) \(code)")
        }
        guard let key = S3Client.element("AccessKeyId", in: text),
            let secret = S3Client.element("SecretAccessKey", in: text),
            let sessionToken = S3Client.element("SessionToken", in: text)
        else { throw BatchError("STS AssumeRoleWithWebIdentity: no credentials in the answer") }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: sessionToken,
                              expiration: S3Client.element("Expiration", in: text).flatMap(Timestamps.parseISO8601),
                              source: "web identity")
    }

    // MARK: Container and instance metadata

    /// The JSON both metadata services answer with.
    struct MetadataCredentials: Decodable {
        var AccessKeyId: String
        var SecretAccessKey: String
        var Token: String?
        var Expiration: String?
    }

    private func container() async throws -> AWSCredentials {
        let url = value("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            ?? "http://169.254.170.2" + (value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ?? "")
        var request = HTTPClientRequest(url: url)
        if let token = value("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
            request.headers.add(name: "Authorization", value: token)
        } else if let file = value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            guard let data = FileManager.default.contents(atPath: file),
                let token = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines)
            else { throw BatchError("container credentials: cannot read \(file)") }
            request.headers.add(name: "Authorization", value: token)
        }
        let (status, body) = try await fetch(request, what: "container credentials")
        guard (200..<300).contains(status) else { throw BatchError("container credentials: HTTP \(status)") }
        return try decode(body, source: "container")
    }

    private func instanceMetadata() async throws -> AWSCredentials {
        var base = value("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254"
        while base.hasSuffix("/") { base.removeLast() }
        // IMDSv2: a session token first; IMDSv1's unauthenticated GETs are never used.
        var tokenRequest = HTTPClientRequest(url: base + "/latest/api/token")
        tokenRequest.method = .PUT
        tokenRequest.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
        let (tokenStatus, tokenBody) = try await fetch(tokenRequest, what: "IMDSv2 token", timeout: .seconds(2))
        guard (200..<300).contains(tokenStatus) else { throw BatchError("IMDSv2 token: HTTP \(tokenStatus)") }
        let token = String(decoding: tokenBody, as: UTF8.self)
        let rolesURL = base + "/latest/meta-data/iam/security-credentials/"
        var rolesRequest = HTTPClientRequest(url: rolesURL)
        rolesRequest.headers.add(name: "X-aws-ec2-metadata-token", value: token)
        let (rolesStatus, rolesBody) = try await fetch(rolesRequest, what: "IMDSv2 role", timeout: .seconds(2))
        guard (200..<300).contains(rolesStatus),
            let role = String(decoding: rolesBody, as: UTF8.self).split(whereSeparator: \.isNewline).first
        else { throw BatchError("IMDSv2: no instance role (HTTP \(rolesStatus))") }
        var request = HTTPClientRequest(url: rolesURL + S3Client.encode(String(role), keepSlash: false))
        request.headers.add(name: "X-aws-ec2-metadata-token", value: token)
        let (status, body) = try await fetch(request, what: "IMDSv2 credentials", timeout: .seconds(2))
        guard (200..<300).contains(status) else { throw BatchError("IMDSv2 credentials: HTTP \(status)") }
        return try decode(body, source: "instance metadata")
    }

    private func decode(_ body: [UInt8], source: String) throws -> AWSCredentials {
        guard let answer = try? JSONDecoder().decode(MetadataCredentials.self, from: Data(body)) else {
            throw BatchError("\(source) credentials: not the expected JSON")
        }
        return AWSCredentials(accessKeyID: answer.AccessKeyId, secretAccessKey: answer.SecretAccessKey,
                              sessionToken: answer.Token, expiration: answer.Expiration.flatMap(Timestamps.parseISO8601),
                              source: source)
    }

    private func fetch(_ request: HTTPClientRequest, what: String, timeout: TimeAmount = .seconds(10)) async throws
        -> (Int, [UInt8])
    {
        do {
            let response = try await http.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), Array(buffer: body))
        } catch let error as BatchError {
            throw error
        } catch {
            throw BatchError("\(what): \(error)")
        }
    }
}
