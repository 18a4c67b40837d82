//! The emulators the tests run against, and the SDK configuration that reaches them.
//!
//! - **DynamoDB and DynamoDB Streams** go to DynamoDB Local, AWS's own DynamoDB engine (the jar
//!   that `just dynamodb-local` unpacks into `.dynamodb-local/`).
//! - **Everything else** (SQS, SNS, CloudWatch, CloudFormation) goes to moto's server.
//! - `SESSIONWARDEN_EMULATOR=moto` sends DynamoDB and DynamoDB Streams to moto as well; the
//!   default (unset, or `dynamodb-local`) is DynamoDB Local.
//!
//! Each endpoint comes from the environment when it is set (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`: `just test` starts one pair
//! of emulators for the whole run and exports them). Otherwise the emulator is started privately,
//! once per test process, on a free 127.0.0.1 port, and it dies with the process.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};

/// Where each service of the tests is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// moto: SQS, SNS, CloudWatch, CloudFormation (and DynamoDB in moto mode).
    pub aws: String,
    /// DynamoDB.
    pub dynamodb: String,
    /// DynamoDB Streams.
    pub streams: String,
}

impl Endpoints {
    /// The variables that point a process using the SDK's default configuration (a worker
    /// binary, `sessionctl`) at the same emulators.
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            ("AWS_ENDPOINT_URL", self.aws.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.dynamodb.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", self.streams.clone()),
        ]
    }
}

/// Which engine serves DynamoDB and DynamoDB Streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamoEngine {
    /// DynamoDB Local (the default).
    DynamoDbLocal,
    /// moto (`SESSIONWARDEN_EMULATOR=moto`).
    Moto,
}

/// The engine chosen by `SESSIONWARDEN_EMULATOR`.
pub fn dynamo_engine() -> DynamoEngine {
    match std::env::var("SESSIONWARDEN_EMULATOR").as_deref() {
        Err(_) | Ok("") | Ok("dynamodb-local") => DynamoEngine::DynamoDbLocal,
        Ok("moto") => DynamoEngine::Moto,
        Ok(other) => panic!("SESSIONWARDEN_EMULATOR={other:?}: use `dynamodb-local` or `moto`"),
    }
}

fn from_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// This process's endpoints, resolved (and private emulators started) on first use.
pub fn endpoints() -> &'static Endpoints {
    static ENDPOINTS: OnceLock<Endpoints> = OnceLock::new();
    ENDPOINTS.get_or_init(|| {
        let aws = from_env("AWS_ENDPOINT_URL").unwrap_or_else(start_moto);
        let (dynamodb, streams) = match dynamo_engine() {
            DynamoEngine::Moto => (aws.clone(), aws.clone()),
            DynamoEngine::DynamoDbLocal => {
                let dynamodb =
                    from_env("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(start_dynamodb_local);
                let streams =
                    from_env("AWS_ENDPOINT_URL_DYNAMODB_STREAMS").unwrap_or(dynamodb.clone());
                (dynamodb, streams)
            }
        };
        Endpoints {
            aws,
            dynamodb,
            streams,
        }
    })
}

/// Per-service endpoints for the SDK, keyed by service ID the way `AWS_ENDPOINT_URL_<SERVICE>`
/// is: the SDK consults this before the general endpoint, unless one was set in code.
#[derive(Debug)]
struct ServiceEndpoints(Endpoints);

impl LoadServiceConfig for ServiceEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != "AWS_ENDPOINT_URL" {
            return None;
        }
        Some(match key.service_id() {
            "DynamoDB" => self.0.dynamodb.clone(),
            "DynamoDB Streams" => self.0.streams.clone(),
            _ => self.0.aws.clone(),
        })
    }
}

/// SDK configuration for the emulators: fixed region, dummy credentials, and each service's
/// endpoint. No `.endpoint_url()` on the loader: an endpoint set in code wins over every
/// per-service one, which would send DynamoDB to moto.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_for(endpoints().clone()).await
}

/// SDK configuration like [`sdk_config`], but reaching each service at `endpoints` (for example
/// a fault-injecting proxy in front of each emulator: `just faults`).
pub async fn sdk_config_for(endpoints: Endpoints) -> SdkConfig {
    let loaded = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "sessionwarden-tests",
        ))
        .load()
        .await;
    loaded
        .into_builder()
        .service_config(ServiceEndpoints(endpoints))
        .build()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The repository root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn start_moto() -> String {
    let bin = match std::env::var("MOTO_SERVER") {
        Ok(p) => PathBuf::from(p),
        Err(_) => Some(repo().join(".venv/bin/moto_server"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("moto_server")),
    };
    let port = free_port();
    let mut cmd = Command::new(&bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    serve(
        cmd,
        port,
        "moto_server",
        "run `just test`, which installs moto into .venv, or set MOTO_SERVER or AWS_ENDPOINT_URL",
    )
}

/// The unpacked DynamoDB Local: `DYNAMODB_LOCAL_DIR`, or `.dynamodb-local/jar` (`just test`
/// and `just dynamodb-local` put it there).
fn dynamodb_local_dir() -> PathBuf {
    std::env::var("DYNAMODB_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".dynamodb-local/jar"))
}

fn start_dynamodb_local() -> String {
    let dir = dynamodb_local_dir();
    let hint = "run `just dynamodb-local` (or `just test`), set DYNAMODB_LOCAL_DIR or \
                AWS_ENDPOINT_URL_DYNAMODB, or use SESSIONWARDEN_EMULATOR=moto";
    assert!(
        dir.join("DynamoDBLocal.jar").exists(),
        "no DynamoDBLocal.jar in {}: {hint}",
        dir.display()
    );
    let port = free_port();
    let mut cmd = Command::new("java");
    cmd.current_dir(&dir)
        .arg(format!(
            "-Djava.library.path={}",
            dir.join("DynamoDBLocal_lib").display()
        ))
        .args(["-jar", "DynamoDBLocal.jar", "-inMemory", "-sharedDb"])
        .args(["-disableTelemetry", "-port", &port.to_string()]);
    serve(
        cmd,
        port,
        &format!("DynamoDB Local from {}", dir.display()),
        hint,
    )
}

/// Starts `cmd` as a server that dies with this process and waits until it listens on `port`.
fn serve(mut cmd: Command, port: u16, what: &str, hint: &str) -> String {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let (tx, rx) = std::sync::mpsc::channel();
    let what_ = what.to_string();
    let hint = hint.to_string();
    // The child is spawned from a thread that lives as long as the process (it waits on the
    // child), so PR_SET_PDEATHSIG kills the server when the test process exits, even on a panic.
    std::thread::spawn(move || {
        #[cfg(target_os = "linux")]
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(()));
                let status = child.wait();
                let _ = tx.send(Err(format!("{what_} exited ({status:?}); {hint}")));
            }
            Err(e) => {
                let _ = tx.send(Err(format!("cannot start {what_} ({e}); {hint}")));
            }
        }
    });
    if let Err(e) = rx.recv().expect("emulator starter thread") {
        panic!("{e}");
    }
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Err(e)) = rx.try_recv() {
            panic!("{e}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    format!("http://127.0.0.1:{port}")
}
