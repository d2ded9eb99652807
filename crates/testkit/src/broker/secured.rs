//! A broker with a SASL_SSL listener: TLS with certificates made at test time by the `openssl` CLI (a CA of its own
//! and a broker certificate for `127.0.0.1` and `localhost`, in a PKCS12 keystore), SCRAM-SHA-512 users created when
//! the storage is formatted (`StorageTool format --add-scram`), optionally Kafka's `StandardAuthorizer` with `admin`
//! as super user. The PLAINTEXT listener stays on loopback for the controller, inter-broker traffic and the
//! harness's readiness check; clients of a test reach the broker on [`Secured::port`] only.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a secured broker is given.
#[derive(Debug, Clone)]
pub struct SecuredOptions {
    /// SCRAM-SHA-512 users, `(name, password)`. `admin` is always one (with [`SecuredOptions::admin_password`]).
    pub users: Vec<(String, String)>,
    /// The password of `admin`, the super user.
    pub admin_password: String,
    /// Kafka's `StandardAuthorizer`, with `User:admin` (and the PLAINTEXT listener's `User:ANONYMOUS`, for the
    /// controller and inter-broker traffic) as super users; every other principal needs ACLs.
    pub authorizer: bool,
}

impl Default for SecuredOptions {
    fn default() -> Self {
        SecuredOptions {
            users: Vec::new(),
            admin_password: format!("admin-{}", random_token()),
            authorizer: false,
        }
    }
}

impl SecuredOptions {
    /// Add a SCRAM-SHA-512 user.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_string(), password.to_string()));
        self
    }

    /// Turn on the `StandardAuthorizer`.
    pub fn with_authorizer(mut self) -> Self {
        self.authorizer = true;
        self
    }
}

/// The SASL_SSL listener of a running broker.
#[derive(Debug, Clone)]
pub struct Secured {
    /// The SASL_SSL port on 127.0.0.1.
    pub port: u16,
    /// The options the broker was started with.
    pub options: SecuredOptions,
    /// The folder of the certificates.
    pub dir: PathBuf,
    /// The keystore password (PKCS12).
    pub(crate) keystore_password: String,
}

impl Secured {
    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA certificate (PEM) that signed the broker's certificate.
    pub fn ca_location(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The librdkafka client properties of `user` over SASL_SSL (SCRAM-SHA-512), trusting the broker's CA.
    pub fn client_properties(&self, user: &str, password: &str) -> Vec<(String, String)> {
        [
            ("bootstrap.servers", self.bootstrap()),
            ("security.protocol", "SASL_SSL".to_string()),
            ("sasl.mechanism", "SCRAM-SHA-512".to_string()),
            ("sasl.username", user.to_string()),
            ("sasl.password", password.to_string()),
            ("ssl.ca.location", self.ca_location().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// [`Secured::client_properties`] of `admin`.
    pub fn admin_properties(&self) -> Vec<(String, String)> {
        self.client_properties("admin", &self.options.admin_password)
    }

    /// Every user with its password, `admin` first.
    pub fn all_users(&self) -> Vec<(String, String)> {
        let mut users = vec![("admin".to_string(), self.options.admin_password.clone())];
        users.extend(self.options.users.iter().cloned());
        users
    }

    /// The lines added to `server.properties`.
    pub(crate) fn server_properties(&self, plaintext_port: u16, controller_port: u16) -> String {
        let port = self.port;
        let keystore = self.dir.join("broker.p12");
        let mut text = format!(
            "listeners=PLAINTEXT://127.0.0.1:{plaintext_port},CONTROLLER://127.0.0.1:{controller_port},SASL_SSL://127.0.0.1:{port}
advertised.listeners=PLAINTEXT://127.0.0.1:{plaintext_port},SASL_SSL://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location={keystore}
ssl.keystore.password={password}
ssl.key.password={password}
ssl.client.auth=none
",
            keystore = keystore.display(),
            password = self.keystore_password,
        );
        if self.options.authorizer {
            text.push_str(
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
",
            );
        }
        text
    }

    /// The `--add-scram` arguments of `StorageTool format`.
    pub(crate) fn scram_args(&self) -> Vec<String> {
        self.all_users()
            .into_iter()
            .flat_map(|(name, password)| {
                [
                    "--add-scram".to_string(),
                    format!("SCRAM-SHA-512=[name={name},password={password}]"),
                ]
            })
            .collect()
    }

    /// Make the CA, the broker's certificate and its keystore in [`Secured::dir`] unless they exist.
    pub(crate) fn make_certificates(&self) -> Result<(), String> {
        if self.dir.join("broker.p12").is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("create {}: {e}", self.dir.display()))?;
        make_ca(&self.dir, "ca", "switchyard-test-ca")?;
        let d = &self.dir;
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "broker.key",
                "-out",
                "broker.csr",
                "-subj",
                "/CN=localhost",
            ],
        )?;
        std::fs::write(
            d.join("broker.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .map_err(|e| e.to_string())?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "broker.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "broker.crt",
                "-days",
                "2",
                "-extfile",
                "broker.ext",
            ],
        )?;
        let pass = format!("pass:{}", self.keystore_password);
        openssl(
            d,
            &[
                "pkcs12",
                "-export",
                "-in",
                "broker.crt",
                "-inkey",
                "broker.key",
                "-certfile",
                "ca.crt",
                "-name",
                "broker",
                "-out",
                "broker.p12",
                "-passout",
                &pass,
            ],
        )
    }
}

/// A self-signed CA `<name>.crt` / `<name>.key` in `dir` (subject `CN=<cn>`): the broker's, or one a test trusts
/// instead to see an untrusted certificate refused.
pub fn make_ca(dir: &Path, name: &str, cn: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let key = format!("{name}.key");
    let crt = format!("{name}.crt");
    let subject = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &subject,
        ],
    )?;
    Ok(dir.join(crt))
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("run openssl: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed with {}: {}",
            args.first().copied().unwrap_or_default(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A random token for passwords (not cryptographic; unique per call).
pub fn random_token() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", h.finish())
}
