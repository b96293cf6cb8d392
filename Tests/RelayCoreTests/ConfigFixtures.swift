/// The complete example of SPEC §3, verbatim.
let specExampleYAML = #"""
    kafka:
      brokers: 127.0.0.1:9092            # RELAY_BROKERS overrides
      topics: {qualifications: aam.qualifications, pixel_events: aam.pixel-events,
               pixel_audit: aam.pixel-audit, dead_letter: aam.dead-letter}
      properties: {}                     # passed to librdkafka as is: security.protocol, sasl.*, ssl.* ...
    edge:
      listen: 127.0.0.1:8080             # relay-edge --port overrides the port
      cors_origins: []
      redirect_key_env: RELAY_REDIRECT_KEY   # signs /px redirect targets
      snapshot_dir: ./state/edge
    pixel_audit: {audit_window: 10m, grace: 1m}
    destinations:
      - id: 5001
        name: acme-dsp
        kind: realtime
        url: https://partner.example/aam
        client_id: acme
        user_dpid: 20915                 # 0 = the platform's uuid
        unsegment: true                  # default false
        max_users_per_message: 10
        flush_interval_ms: 1000
        timeout_ms: 3000
        max_in_flight: 4
        rate_limit_per_second: 200       # requests; default unlimited
        retry: {max_attempts: 8, initial_backoff_ms: 200, max_backoff_ms: 60000}
        gzip: false
        signing: {algorithm: sha256, header: X-Signature, key_env: ACME_HMAC_KEY}
        # or: oauth2: {token_url: https://partner.example/token, client_id_env: ..., client_secret_env: ...}
        mappings:
          - {segment: 4532, alias: acme-4532}
          - {segment: 99, alias: acme-99, start: 2026-01-01, end: 2027-01-01}
      - id: 6001
        name: acme-files
        kind: batch
        every: 24h
        at: "14:00"                      # UTC alignment, optional
        grace: 30s
        mode: iter                       # iter | full
        master_dpid: 20914               # 0 = the platform's uuid
        pid_alias: acme
        gzip: true
        max_file_bytes: 1073741824
        output: {type: dir, path: ./outbound}
        # or: {type: s3, bucket: b, prefix: aam/, endpoint: http://127.0.0.1:5000, region: us-east-1,
        #      access_key_env: AWS_ACCESS_KEY_ID, secret_key_env: AWS_SECRET_ACCESS_KEY}
        # or: {type: http, url: https://partner.example/upload}
        mappings: [{segment: 4532}, {segment: 99, alias: "99"}]
      - id: 7001
        name: px-partner
        kind: url
        url: "http://px.partner.example/sync?seg=%alias%&uid=%did%&r=%rnd%"
        secure_url: "https://px.partner.example/sync?seg=%alias%&uid=%did%&r=%rnd%"
        serialize: {delimiter: ","}      # optional: one URL for all aliases
        audit: redirect                  # redirect | none (default none)
        max_loss_rate: 0.20
        mappings: [{segment: 4532, alias: p4532}]
      - id: 8001
        name: ad-server
        kind: cookie
        cookie_name: aam_seg
        key: segID
        format: single_key               # single_key | key_value | serialized
        key_separator: "="
        pair_separator: ","
        value_separator: "|"             # serialized only
        max_bytes: 2048
        ttl_days: 10
        domain: .publisher.example
        set_cookie: false
        mappings: [{segment: 4532}, {segment: 99}]
    """#

/// The secrets the example refers to.
let specExampleEnvironment = ["ACME_HMAC_KEY": "s3cr3t-hmac", "RELAY_REDIRECT_KEY": "r3d1rect"]

/// A small valid file to which a test adds one destination.
func config(destination: String = "", kafka: String = "kafka: {brokers: 127.0.0.1:9092}") -> String {
    destination.isEmpty ? kafka + "\n" : kafka + "\ndestinations:\n" + destination
}
