//! A corporate network, as the tests meet it: a private CA (what a TLS-inspection product
//! installs), HTTPS fronts with certificates from it before the simulator's API and storage,
//! and a forward proxy (CONNECT for HTTPS, absolute-form for HTTP, optional Basic credentials)
//! that records which hosts it carried traffic to.

use crate::Simulator;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A private certificate authority, made fresh for a test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate and its key, issued by a [`TestCa`].
#[derive(Clone)]
pub struct ServerIdentity {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl TestCa {
    /// A CA whose certificate's common name (and so the issuer a client sees) is `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "TDP Bulk Downloader tests");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// The CA certificate in PEM, as IT would install it.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> ServerIdentity {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server params");
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.distinguished_name = dn;
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server certificate");
        ServerIdentity {
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }
}

/// A TLS front: accepts HTTPS and passes the plain bytes on to `upstream`.
pub struct TlsFront {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl TlsFront {
    pub async fn start(upstream: SocketAddr, identity: &ServerIdentity) -> io::Result<Self> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], key)
        .map_err(io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = stopped.cancelled() => return,
                };
                count.fetch_add(1, Ordering::Relaxed);
                let acceptor = acceptor.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    // A client that rejects the certificate ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut tls, &mut up) => {}
                        _ = stopped.cancelled() => {}
                    }
                });
            }
        });
        Ok(TlsFront {
            addr,
            connections,
            stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connections accepted so far (each a TLS handshake begun).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A simulator's API and storage behind HTTPS fronts with certificates from one CA, as TLS
/// inspection presents them: the API as `https://localhost:P`, storage as
/// `https://127.0.0.1:Q` (the simulator's pre-signed URLs point there).
pub struct HttpsFronts {
    pub api: TlsFront,
    pub s3: TlsFront,
}

impl HttpsFronts {
    pub async fn start(sim: &Simulator, ca: &TestCa) -> io::Result<Self> {
        let api_addr: SocketAddr = sim.base_url()["http://".len()..]
            .parse()
            .map_err(io::Error::other)?;
        let api = TlsFront::start(api_addr, &ca.issue(&["localhost"])).await?;
        let s3 = TlsFront::start(sim.s3_addr(), &ca.issue(&["127.0.0.1"])).await?;
        sim.set_storage_base(&format!("https://127.0.0.1:{}", s3.addr().port()));
        Ok(HttpsFronts { api, s3 })
    }

    /// The TDP base URL through the front.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.api.addr().port())
    }
}

/// A forward proxy on 127.0.0.1.
pub struct ForwardProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
}

impl ForwardProxy {
    /// With `credentials`, every request must carry them (Basic), or gets a 407.
    pub async fn start(credentials: Option<(&str, &str)>) -> io::Result<Self> {
        let expected = credentials.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (stopped, log) = (stop.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = stopped.cancelled() => return,
                };
                let (expected, log, stopped) = (expected.clone(), log.clone(), stopped.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(tcp, expected, log) => {}
                        _ = stopped.cancelled() => {}
                    }
                });
            }
        });
        Ok(ForwardProxy { addr, seen, stop })
    }

    /// The proxy's address as users give it, without credentials.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it carried, one entry per request: `CONNECT host:port` or `GET host:port`.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests refused with 407.
    pub fn refused(&self) -> usize {
        self.seen().iter().filter(|s| s.starts_with("407 ")).count()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(
    tcp: TcpStream,
    expected: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
) -> io::Result<()> {
    let mut client = BufReader::new(tcp);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if client.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let end = line == "\r\n" || line == "\n";
        head.push(line);
        if end {
            break;
        }
        if head.len() > 200 {
            return Ok(());
        }
    }
    let mut first = head[0].split_whitespace();
    let (method, target) = (
        first.next().unwrap_or("").to_string(),
        first.next().unwrap_or("").to_string(),
    );
    let header = |name: &str| {
        head[1..].iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let authority = if method == "CONNECT" {
        target.clone()
    } else {
        target
            .strip_prefix("http://")
            .and_then(|t| t.split('/').next())
            .unwrap_or("")
            .to_string()
    };
    let record = |what: String| log.lock().unwrap_or_else(|e| e.into_inner()).push(what);
    if let Some(expected) = &expected {
        if header("proxy-authorization").as_deref() != Some(expected.as_str()) {
            record(format!("407 {method} {authority}"));
            client
                .get_mut()
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test proxy\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
    }
    record(format!("{method} {authority}"));
    let mut upstream = TcpStream::connect(&authority).await?;
    if method == "CONNECT" {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
    } else {
        // Origin-form for the server, one request per connection: the next request on the
        // client's connection may be for another host.
        let path = target
            .strip_prefix("http://")
            .and_then(|t| t.find('/').map(|i| t[i..].to_string()))
            .unwrap_or_else(|| "/".into());
        let mut out = format!("{method} {path} HTTP/1.1\r\n");
        for h in &head[1..head.len() - 1] {
            let name = h
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !["proxy-authorization", "proxy-connection", "connection"].contains(&name.as_str()) {
                out.push_str(h);
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        upstream.write_all(out.as_bytes()).await?;
    }
    let buffered = client.buffer().to_vec();
    if !buffered.is_empty() {
        upstream.write_all(&buffered).await?;
    }
    let mut client = client.into_inner();
    if method == "CONNECT" {
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    } else {
        // A GET has no body to pass on: the answer goes back and the connection closes.
        let mut answer = Vec::new();
        upstream.read_to_end(&mut answer).await?;
        client.write_all(&answer).await?;
        client.shutdown().await?;
    }
    Ok(())
}
