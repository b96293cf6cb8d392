import AsyncHTTPClient
import Foundation
import RelayCore
import RelayTestSupport
import Synchronization
import Testing

@testable import RelayBatch

/// S3 credentials against moto with authentication switched on: moto then checks each request's Signature V4, the
/// session token of temporary credentials and the IAM policy of the user or role, so an upload that reads back was
/// signed with valid credentials of the kind under test.
@Suite("Batch S3 credentials", .serialized, .timeLimit(.minutes(3)))
struct BatchS3CredentialsTests {
    /// A bucket, a role that web identities may assume, a user with an access key, and an assumed-role session:
    /// all allowed s3:*. Prints them as JSON.
    static let setUp = #"""
        import boto3, json, sys
        kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
        iam, s3, sts = boto3.client("iam", **kw), boto3.client("s3", **kw), boto3.client("sts", **kw)
        s3.create_bucket(Bucket="relay-auth")
        allow = json.dumps({"Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example"},
                            "Action": "sts:AssumeRoleWithWebIdentity"}]})
        role = iam.create_role(RoleName="relay-batch", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        iam.put_role_policy(RoleName="relay-batch", PolicyName="s3", PolicyDocument=allow)
        iam.create_user(UserName="relay")
        iam.put_user_policy(UserName="relay", PolicyName="s3", PolicyDocument=allow)
        key = iam.create_access_key(UserName="relay")["AccessKey"]
        session = sts.assume_role(RoleArn=role, RoleSessionName="static")["Credentials"]
        print(json.dumps({"role": role, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"],
                          "session_key": session["AccessKeyId"], "session_secret": session["SecretAccessKey"],
                          "session_token": session["SessionToken"]}))
        """#

    struct Identities: Decodable {
        var role: String
        var key: String
        var secret: String
        var session_key: String
        var session_secret: String
        var session_token: String
    }

    static func prepare() async throws -> (Moto, Identities) {
        let moto = try await Moto.start()
        do {
            let identities = try JSONDecoder().decode(Identities.self, from: Data(try await moto.python(setUp).utf8))
            return (moto, identities)
        } catch {
            moto.stop()
            throw error
        }
    }

    /// Uploads one object through `provider` and reads it back through it; moto checks both requests.
    static func roundTrip(_ moto: Moto, _ provider: AWSCredentialProvider, key: String) async throws -> [UInt8] {
        let client = S3Client(endpoint: moto.endpoint, region: "us-east-1", credentials: provider, http: .shared)
        let body = Array("\(key) a4532 \n".utf8)
        try await client.put(bucket: "relay-auth", key: key, body: body)
        let back = try await client.get(bucket: "relay-auth", key: key)
        #expect(back == body)
        return back
    }

    @Test func staticKeysUploadAndAWrongSecretIsRefused() async throws {
        let (moto, ids) = try await Self.prepare()
        defer { moto.stop() }
        try await moto.requireAuthentication()
        let good = AWSCredentialProvider(.fixed(AWSCredentials(accessKeyID: ids.key, secretAccessKey: ids.secret,
                                                               source: "test")), region: "us-east-1", http: .shared)
        _ = try await Self.roundTrip(moto, good, key: "static/a.sync")
        // The same key id with a wrong secret: the signature no longer matches and moto refuses.
        let bad = AWSCredentialProvider(.fixed(AWSCredentials(accessKeyID: ids.key, secretAccessKey: "wrong",
                                                              source: "test")), region: "us-east-1", http: .shared)
        await #expect(throws: BatchError.self) { _ = try await Self.roundTrip(moto, bad, key: "static/b.sync") }
    }

    @Test func sessionTokenFromTheEnvironmentIsSigned() async throws {
        let (moto, ids) = try await Self.prepare()
        defer { moto.stop() }
        try await moto.requireAuthentication()
        let environment = ["AWS_ACCESS_KEY_ID": ids.session_key, "AWS_SECRET_ACCESS_KEY": ids.session_secret,
                           "AWS_SESSION_TOKEN": ids.session_token, "AWS_EC2_METADATA_DISABLED": "true"]
        let provider = AWSCredentialProvider(.chain(environment: environment), region: "us-east-1", http: .shared)
        _ = try await Self.roundTrip(moto, provider, key: "session/a.sync")
        #expect(try await provider.credentials().source == "environment")
        // Without the token moto cannot match the temporary key: the token is what made the upload valid.
        var withoutToken = environment
        withoutToken["AWS_SESSION_TOKEN"] = nil
        let tokenless = AWSCredentialProvider(.chain(environment: withoutToken), region: "us-east-1", http: .shared)
        await #expect(throws: BatchError.self) { _ = try await Self.roundTrip(moto, tokenless, key: "session/b.sync") }
    }

    /// The worker's path: no keys in relay.yaml, a web identity token file and a role ARN in the environment, STS
    /// at moto; the cut and its .info upload and read back. Then the clock passes the credentials' expiry: the
    /// provider assumes the role again (a new temporary key) and uploads still pass moto's checks.
    @Test func webIdentityCredentialsUploadAndAreRenewedBeforeTheyExpire() async throws {
        let (moto, ids) = try await Self.prepare()
        defer { moto.stop() }
        let folder = try TemporaryFolder()
        let tokenFile = folder.url.appendingPathComponent("token")
        try "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZWxheS1iYXRjaCJ9.c2lnbmF0dXJl\n".write(to: tokenFile, atomically: true,
                                                                                        encoding: .utf8)
        let environment = ["AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path, "AWS_ROLE_ARN": ids.role,
                           "AWS_ENDPOINT_URL_STS": moto.endpoint.absoluteString, "AWS_EC2_METADATA_DISABLED": "true"]

        let yaml = """
            kafka: {brokers: \(TestBroker.brokers)}
            destinations:
              - id: 6011
                name: irsa-files
                kind: batch
                every: 10s
                grace: 1s
                mode: full
                pid_alias: irsa
                gzip: false
                output: {type: s3, bucket: relay-auth, prefix: aam/, endpoint: "\(moto.endpoint.absoluteString)",
                         region: us-east-1, sse: AES256, storage_class: STANDARD_IA}
                mappings: [{segment: 4532, alias: a4532}]
            """
        let h = try await Harness(partitions: [0], partitionCount: 1, yaml: yaml, environment: environment)
        try await moto.requireAuthentication(after: 1)  // the one STS call below is unsigned
        let t0 = BatchEngineTests.t0
        await h.feed(0, (0..<5).map { (t0 + 1_000 + Int64($0), event("u\($0)", [.realized(4532)], pid: nil)) })
        h.clock.set(t0 + 11_500)
        await h.engine.tick()
        await h.settle()  // the completer writes the .info
        let cut = t0 + 10_000
        let plan = await h.engine.plans.first
        let s3 = try #require(plan?.delivery as? S3Delivery)
        let part = try await s3.client.get(bucket: "relay-auth", key: "aam/s3_6011_0_irsa_full_\(cut)_000.sync")
        #expect(String(decoding: part, as: UTF8.self) == (0..<5).map { "u\($0) a4532\n" }.joined())
        let info = try await s3.client.get(bucket: "relay-auth", key: "aam/s3_6011_0_irsa_full_\(cut).info")
        #expect(String(decoding: info, as: UTF8.self).contains("\"FileLineCount\": 5"))
        let first = try await s3.client.credentials.credentials()
        #expect(first.source == "web identity")
        #expect(first.sessionToken != nil)

        // Renewal: a provider whose clock reads just inside the refresh margin of the expiry.
        let clock = Mutex(Date())
        let provider = AWSCredentialProvider(.chain(environment: environment), region: "us-east-1", http: .shared,
                                             now: { clock.withLock { $0 } })
        try await moto.requireAuthentication(after: 1)
        let before = try await provider.credentials()
        let expiration = try #require(before.expiration)
        _ = try await Self.roundTrip(moto, provider, key: "renew/before.sync")
        #expect(try await provider.credentials() == before)  // still valid: no new STS call
        clock.withLock { $0 = expiration.addingTimeInterval(-60) }
        try await moto.requireAuthentication(after: 1)
        let renewed = try await provider.credentials()
        #expect(renewed.accessKeyID != before.accessKeyID)
        // Back to the present, where the renewed credentials are fresh: they are used, not renewed again.
        clock.withLock { $0 = Date() }
        #expect(try await provider.credentials() == renewed)
        _ = try await Self.roundTrip(moto, provider, key: "renew/after.sync")
    }

    @Test func noCredentialsAnywhereIsAClearError() async throws {
        let provider = AWSCredentialProvider(.chain(environment: ["AWS_EC2_METADATA_DISABLED": "true"]),
                                             region: "us-east-1", http: .shared)
        let error = await #expect(throws: BatchError.self) { _ = try await provider.credentials() }
        #expect(error?.description.contains("no AWS credentials") == true)
    }
}
