//! The two HTTP services: TDP's API and an S3 endpoint, each on its own loopback port.

use super::content::{draw, fill, hash_str, md5_of, stored_checksum, Checksums};
use super::counters::{Counters, CountersSnapshot};
use super::files::{FileKind, SimFile};
use super::search::{Index, Page};
use super::shaping::{StreamPacer, TotalPacer};
use super::{Faults, Outage, Shaping, SimConfig};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use md5::{Digest, Md5};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

const BUCKET: &str = "ts-sim-datalake";
const CHUNK: usize = 64 * 1024;

/// Characters kept as they are in an object key inside a URL path.
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

struct Obj {
    file: Arc<SimFile>,
    /// The bytes as stored, for gzip objects (encoded); None: generated on the fly.
    stored: Option<Arc<Vec<u8>>>,
    etag: OnceCell<String>,
    /// S3's additional checksum, computed on first use.
    checksum: OnceCell<Option<Checksums>>,
}

impl Obj {
    fn of(file: Arc<SimFile>) -> Arc<Obj> {
        let stored = match file.kind {
            k if k.is_gzip() => Some(Arc::new(gzip(&file.expected_content()))),
            _ => None,
        };
        Arc::new(Obj {
            file,
            stored,
            etag: OnceCell::new(),
            checksum: OnceCell::new(),
        })
    }

    async fn checksum(&self) -> Option<Checksums> {
        let algorithm = self.file.checksum?;
        let part_size = self.file.kind.part_size();
        self.checksum
            .get_or_init(|| async {
                let (seed, size, stored) = (
                    self.file.content_seed(),
                    self.file.size,
                    self.stored.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    let stored = stored.as_deref().map(Vec::as_slice);
                    stored_checksum(seed, size, stored, algorithm, part_size)
                })
                .await
                .ok()
            })
            .await
            .clone()
    }

    fn stored_len(&self) -> u64 {
        match &self.stored {
            Some(v) => v.len() as u64,
            None => self.file.size,
        }
    }

    async fn etag(&self) -> String {
        self.etag
            .get_or_init(|| async {
                match (&self.stored, self.file.kind) {
                    (_, FileKind::Kms | FileKind::KmsGzip) => {
                        // 32 hex digits that are not the MD5 of anything we serve.
                        format!(
                            "{:016x}{:016x}",
                            hash_str(&self.file.id),
                            !hash_str(&self.file.key)
                        )
                    }
                    (_, FileKind::KmsMultipart { part_size }) => format!(
                        "{:016x}{:016x}-{}",
                        hash_str(&self.file.id),
                        !hash_str(&self.file.key),
                        self.file.size.div_ceil(part_size.max(1)).max(1)
                    ),
                    (_, FileKind::Multipart { part_size }) => {
                        let (seed, size) = (self.file.content_seed(), self.file.size);
                        tokio::task::spawn_blocking(move || {
                            super::content::multipart_etag(seed, size, part_size)
                        })
                        .await
                        .unwrap_or_default()
                    }
                    (Some(bytes), _) => hex::encode(Md5::digest(bytes.as_slice())),
                    (None, _) => {
                        let seed = self.file.content_seed();
                        let size = self.file.size;
                        tokio::task::spawn_blocking(move || hex::encode(md5_of(seed, size)))
                            .await
                            .unwrap_or_default()
                    }
                }
            })
            .await
            .clone()
    }
}

/// Files added while the simulator runs, by ID and by key.
#[derive(Default)]
struct Added {
    by_id: HashMap<String, Arc<Obj>>,
    by_key: HashMap<String, Arc<Obj>>,
}

struct SimState {
    token: String,
    org: String,
    seed: u64,
    secret: String,
    by_id: HashMap<String, Arc<Obj>>,
    by_key: HashMap<String, Arc<Obj>>,
    forbidden: HashSet<String>,
    shaping: RwLock<Shaping>,
    faults: RwLock<Faults>,
    total_pacer: RwLock<Arc<TotalPacer>>,
    url_ttl: Duration,
    counters: Counters,
    attempts: Mutex<HashMap<(String, &'static str), u64>>,
    s3_base: RwLock<String>,
    outage: Mutex<Option<(Outage, tokio::time::Instant)>>,
    clock_offset_secs: i64,
    search: RwLock<Arc<Index>>,
    /// Files added while the simulator runs (by ID, by key).
    added: RwLock<Added>,
    all_files: Mutex<Vec<Arc<SimFile>>>,
    result_window: usize,
    sign_checksum_mode: bool,
    /// While true, the last page of any search waits (to prove that downloads start first).
    hold_last_page: tokio::sync::watch::Sender<bool>,
}

impl SimState {
    fn obj_by_id(&self, id: &str) -> Option<Arc<Obj>> {
        self.by_id.get(id).cloned().or_else(|| {
            let added = self.added.read().unwrap_or_else(|e| e.into_inner());
            added.by_id.get(id).cloned()
        })
    }

    fn obj_by_key(&self, key: &str) -> Option<Arc<Obj>> {
        self.by_key.get(key).cloned().or_else(|| {
            let added = self.added.read().unwrap_or_else(|e| e.into_inner());
            added.by_key.get(key).cloned()
        })
    }

    fn index(&self) -> Arc<Index> {
        self.search
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A JWT-shaped token as TDP issues them: `exp` in its payload, valid until then.
    fn jwt(&self, valid_for: Duration) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = (self.now() + valid_for)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let header = b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64.encode(format!(
            r#"{{"sub":"sim-user","org":"{}","exp":{exp}}}"#,
            self.org
        ));
        let signed = format!("{header}.{payload}");
        let sig = b64.encode(self.sign("JWT", &signed, ""));
        format!("{signed}.{sig}")
    }

    /// Signed by this simulator (whether or not it has expired).
    fn jwt_signed(&self, token: &str) -> bool {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        match token.rsplit_once('.') {
            Some((signed, sig)) => b64.encode(self.sign("JWT", signed, "")) == sig,
            None => false,
        }
    }

    fn jwt_valid(&self, token: &str) -> bool {
        use base64::Engine;
        if !self.jwt_signed(token) {
            return false;
        }
        let exp = token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("exp").and_then(serde_json::Value::as_u64));
        exp.is_some_and(|e| UNIX_EPOCH + Duration::from_secs(e) > self.now())
    }

    /// The simulated servers' clock.
    fn now(&self) -> SystemTime {
        let off = Duration::from_secs(self.clock_offset_secs.unsigned_abs());
        if self.clock_offset_secs >= 0 {
            SystemTime::now() + off
        } else {
            SystemTime::now() - off
        }
    }

    fn next_attempt(&self, id: &str, lane: &'static str) -> u64 {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry((id.to_string(), lane)).or_insert(0);
        *n += 1;
        *n
    }

    fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The outage in force now, if any.
    fn outage(&self) -> Option<Outage> {
        let o = *self.outage.lock().unwrap_or_else(|e| e.into_inner());
        o.filter(|(_, until)| tokio::time::Instant::now() < *until)
            .map(|(kind, _)| kind)
    }

    fn shaping(&self) -> Shaping {
        self.shaping
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A draw for one fault kind of one request.
    fn roll(&self, id: &str, attempt: u64, kind: u64) -> f64 {
        draw(self.seed, &[hash_str(id), attempt, kind])
    }

    fn sign(&self, method: &str, path: &str, query: &str) -> String {
        let mut h = Md5::new();
        for part in [self.secret.as_str(), method, path, query] {
            h.update(part.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    /// A URL shaped as S3 signs them: issued now (`X-Amz-Date`), valid for `ttl` rounded up
    /// to whole seconds (`X-Amz-Expires`), which is what [`answer_s3`] enforces.
    fn presign(&self, obj: &Obj, ttl: Duration, signed: SystemTime) -> String {
        let date = amz_date(signed);
        let expires = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let path = format!("/{BUCKET}/{}", utf8_percent_encode(&obj.file.key, KEY_SET));
        let signed_headers = if self.sign_checksum_mode {
            "host%3Bx-amz-checksum-mode"
        } else {
            "host"
        };
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIASIMULATOR%2F{day}%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders={signed_headers}",
            day = &date[..8],
        );
        let sig = self.sign("GET", &path, &query);
        let base = self
            .s3_base
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        format!("{base}{path}?{query}&X-Amz-Signature={sig}")
    }
}

/// A running simulator; stops when dropped.
pub struct Simulator {
    api_addr: SocketAddr,
    s3_addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: CancellationToken,
}

impl Simulator {
    /// Binds both services on 127.0.0.1 and starts serving on the current tokio runtime.
    pub async fn start(cfg: SimConfig) -> std::io::Result<Simulator> {
        let api_listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port)).await?;
        let s3_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let api_addr = api_listener.local_addr()?;
        let s3_addr = s3_listener.local_addr()?;

        let mut by_id = HashMap::new();
        let mut by_key = HashMap::new();
        let files: Vec<Arc<SimFile>> = cfg.files.into_iter().map(Arc::new).collect();
        let search = Index::new(&files, &cfg.org, BUCKET);
        for file in &files {
            let obj = Obj::of(file.clone());
            if by_key.insert(obj.file.key.clone(), obj.clone()).is_some() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("two simulated files share the key {}", obj.file.key),
                ));
            }
            by_id.insert(obj.file.id.clone(), obj);
        }
        let state = Arc::new(SimState {
            token: cfg.token,
            org: cfg.org,
            seed: cfg.seed,
            secret: format!("sim-secret-{}", cfg.seed),
            by_id,
            by_key,
            forbidden: cfg.forbidden.into_iter().collect(),
            total_pacer: RwLock::new(Arc::new(TotalPacer::new(cfg.shaping.total_bps))),
            shaping: RwLock::new(cfg.shaping),
            faults: RwLock::new(cfg.faults),
            url_ttl: cfg.url_ttl,
            counters: Counters::default(),
            attempts: Mutex::new(HashMap::new()),
            s3_base: RwLock::new(format!("http://{s3_addr}")),
            outage: Mutex::new(None),
            clock_offset_secs: cfg.clock_offset_secs,
            search: RwLock::new(Arc::new(search)),
            added: RwLock::new(Added::default()),
            all_files: Mutex::new(files),
            result_window: cfg.result_window,
            sign_checksum_mode: cfg.sign_checksum_mode,
            hold_last_page: tokio::sync::watch::channel(false).0,
        });

        let shutdown = CancellationToken::new();
        let outages = axum::middleware::from_fn_with_state(state.clone(), network);
        let dates = axum::middleware::from_fn_with_state(state.clone(), date_header);
        let api = Router::new()
            .route("/v1/datalake/retrieve", get(retrieve))
            .route("/v1/fileinfo/search", get(fileinfo_get).post(fileinfo_post))
            .route("/v1/datalake/searchEql", post(search_eql))
            .route("/_sim/counters", get(counters))
            .layer(outages.clone())
            .layer(dates.clone())
            .with_state(state.clone());
        let s3 = Router::new()
            .fallback(s3_object)
            .layer(outages)
            .layer(dates)
            .with_state(state.clone());
        for (listener, router) in [(api_listener, api), (s3_listener, s3)] {
            let stop = shutdown.clone();
            tokio::spawn(async move {
                // As S3 and TDP's front ends do: no Nagle delay between response headers and
                // a body written after them (with the client's delayed ACK it costs ~40 ms a
                // small file).
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let serve = axum::serve(listener, router);
                tokio::select! {
                    _ = serve => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
        Ok(Simulator {
            api_addr,
            s3_addr,
            state,
            shutdown,
        })
    }

    /// The TDP base URL to give a client, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub fn s3_addr(&self) -> SocketAddr {
        self.s3_addr
    }

    /// Where pre-signed URLs point from now on, e.g. an HTTPS front of [`Self::s3_addr`].
    pub fn set_storage_base(&self, base: &str) {
        *self
            .state
            .s3_base
            .write()
            .unwrap_or_else(|e| e.into_inner()) = base.trim_end_matches('/').to_string();
    }

    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// A JWT-shaped token with an `exp` `valid_for` from now (on the simulated clock); the
    /// API takes it until then and answers 401 "Token expired" after.
    pub fn jwt_token(&self, valid_for: Duration) -> String {
        self.state.jwt(valid_for)
    }

    pub fn org(&self) -> &str {
        &self.state.org
    }

    pub fn counters(&self) -> CountersSnapshot {
        self.state.counters.snapshot()
    }

    /// Computes every ETag now, so that no MD5 of a large object delays a first response
    /// during a measurement.
    pub async fn warm_up(&self) {
        for obj in self.state.by_id.values() {
            obj.etag().await;
        }
    }

    pub fn reset_peaks(&self) {
        self.state.counters.reset_peaks();
    }

    pub fn file(&self, id: &str) -> Option<&SimFile> {
        self.state.by_id.get(id).map(|o| &*o.file)
    }

    /// Adds files while the simulator runs: they are served and searchable from now on (a
    /// file whose `indexed_ms` lies in the past was "indexed late").
    pub fn add_files(&self, files: Vec<SimFile>) {
        let st = &self.state;
        let mut all = st.all_files.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut added = st.added.write().unwrap_or_else(|e| e.into_inner());
            for f in files {
                let file = Arc::new(f);
                let obj = Obj::of(file.clone());
                added.by_id.insert(file.id.clone(), obj.clone());
                added.by_key.insert(file.key.clone(), obj);
                all.push(file);
            }
        }
        let index = Index::new(&all, &st.org, BUCKET);
        *st.search.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
    }

    /// Starts a network outage of `kind` for `duration`, from now, on both services.
    pub fn outage(&self, kind: Outage, duration: Duration) {
        let until = tokio::time::Instant::now() + duration;
        *self.state.outage.lock().unwrap_or_else(|e| e.into_inner()) = Some((kind, until));
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.write().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    pub fn set_shaping(&self, shaping: Shaping) {
        *self
            .state
            .total_pacer
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(TotalPacer::new(shaping.total_bps));
        *self
            .state
            .shaping
            .write()
            .unwrap_or_else(|e| e.into_inner()) = shaping;
    }

    /// Stops serving (also done on drop).
    /// Holds back the last page of every search until called again with false.
    pub fn hold_last_search_page(&self, hold: bool) {
        self.state.hold_last_page.send_replace(hold);
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or(""),
        "message": message,
    });
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    resp
}

struct ApiSlot<'a>(&'a Counters);

impl Drop for ApiSlot<'_> {
    fn drop(&mut self) {
        self.0.api_leave();
    }
}

async fn retrieve(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let in_flight = st.counters.api_enter();
    let _slot = ApiSlot(&st.counters);
    let (status, resp) = answer_retrieve(&st, &headers, &q, in_flight).await;
    st.counters.request("retrieve", status);
    resp
}

async fn answer_retrieve(
    st: &SimState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    in_flight: usize,
) -> (u16, Response) {
    let faults = st.faults();
    if let Some(limit) = faults.api_concurrency_limit {
        if in_flight > limit {
            let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            r.headers_mut()
                .insert("retry-after", faults.retry_after_secs.into());
            return (429, r);
        }
    }
    tokio::time::sleep(st.shaping().api_latency).await;
    if let Err((status, message)) = authorise(st, headers) {
        return (status.as_u16(), json_error(status, message));
    }
    let Some(id) = q.get("fileId") else {
        return (
            400,
            json_error(StatusCode::BAD_REQUEST, "fileId is required"),
        );
    };
    if uuid::Uuid::parse_str(id).is_err() {
        return (
            400,
            json_error(StatusCode::BAD_REQUEST, &format!("Invalid fileId: {id}")),
        );
    }
    if q.get("getPresigned").map(String::as_str) != Some("true") {
        return (
            400,
            json_error(
                StatusCode::BAD_REQUEST,
                "the simulator serves getPresigned=true only",
            ),
        );
    }
    let attempt = st.next_attempt(id, "api");
    if st.roll(id, attempt, 1) < faults.api_429 {
        let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, "Rate exceeded");
        r.headers_mut()
            .insert("retry-after", faults.retry_after_secs.into());
        return (429, r);
    }
    if st.roll(id, attempt, 2) < faults.api_502 {
        return (502, json_error(StatusCode::BAD_GATEWAY, "Bad Gateway"));
    }
    if st.roll(id, attempt, 3) < faults.api_503 {
        return (
            503,
            json_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        );
    }
    let Some(obj) = st.obj_by_id(id) else {
        return (
            404,
            json_error(StatusCode::NOT_FOUND, &format!("File not found: {id}")),
        );
    };
    if st.forbidden.contains(id) {
        return (
            403,
            json_error(StatusCode::FORBIDDEN, "Access to this file is denied"),
        );
    }
    let ttl = if st.roll(id, attempt, 4) < faults.short_url_ttl {
        Duration::from_secs(1)
    } else {
        st.url_ttl
    };
    let signed = if faults.stale_first_url && attempt == 1 {
        st.now() - Duration::from_secs(3600)
    } else {
        st.now()
    };
    let body = serde_json::json!({ "url": st.presign(&obj, ttl, signed) });
    let mut r = Response::new(Body::from(body.to_string()));
    r.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    (200, r)
}

/// TDP's checks of the token and the org, shared by every API endpoint.
fn authorise(st: &SimState, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("ts-auth-token") {
        Some(t) if t == st.token => {}
        Some(t) if st.jwt_valid(t) => {}
        Some(t) if st.jwt_signed(t) => return Err((StatusCode::UNAUTHORIZED, "Token expired")),
        _ => return Err((StatusCode::UNAUTHORIZED, "Invalid token")),
    }
    if header("x-org-slug") != Some(st.org.as_str()) {
        return Err((
            StatusCode::FORBIDDEN,
            "User does not have access to this organization",
        ));
    }
    Ok(())
}

/// Runs one search request: auth, latency, the page, and the hold on last pages.
async fn answer_search(
    st: &SimState,
    headers: &HeaderMap,
    endpoint: &'static str,
    page: impl FnOnce(&SimState) -> Result<Page, (u16, String)>,
) -> Response {
    let _in = st.counters.api_enter();
    let _slot = ApiSlot(&st.counters);
    tokio::time::sleep(st.shaping().api_latency).await;
    if let Err((status, message)) = authorise(st, headers) {
        st.counters.request(endpoint, status.as_u16());
        return json_error(status, message);
    }
    match page(st) {
        Ok(p) => {
            if p.last {
                let mut held = st.hold_last_page.subscribe();
                let _ = held.wait_for(|h| !*h).await;
            }
            st.counters.request(endpoint, 200);
            let mut r = Response::new(Body::from(p.body));
            r.headers_mut().insert(
                "content-type",
                "application/json".parse().expect("static header"),
            );
            r
        }
        Err((status, message)) => {
            st.counters.request(endpoint, status);
            json_error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                &message,
            )
        }
    }
}

async fn fileinfo_get(State(st): State<Arc<SimState>>, headers: HeaderMap, uri: Uri) -> Response {
    let pairs: Vec<(String, String)> = uri.query().map(url_pairs).unwrap_or_default();
    answer_search(&st, &headers, "search", |st| {
        st.index().fileinfo(&pairs, st.result_window)
    })
    .await
}

/// `POST /v1/fileinfo/search`: the same parameters as a JSON object (lists for repeated ones).
async fn fileinfo_post(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body).map(|obj| {
            let mut pairs = Vec::new();
            for (k, v) in obj {
                let mut push = |v: &serde_json::Value| {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    pairs.push((k.clone(), text));
                };
                match &v {
                    serde_json::Value::Array(items) => items.iter().for_each(&mut push),
                    serde_json::Value::Object(m) if k == "metadata" => {
                        for (mk, mv) in m {
                            let text = mv.as_str().map(str::to_string).unwrap_or(mv.to_string());
                            pairs.push((format!("metadata.{mk}"), text));
                        }
                    }
                    other => push(other),
                }
            }
            pairs
        });
    answer_search(&st, &headers, "search", |st| match pairs {
        Ok(pairs) => st.index().fileinfo(&pairs, st.result_window),
        Err(e) => Err((400, format!("the body is not a JSON object: {e}"))),
    })
    .await
}

async fn search_eql(State(st): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<serde_json::Value>(&body);
    answer_search(&st, &headers, "searchEql", |st| match parsed {
        Ok(body) => st.index().eql(&body, st.result_window),
        Err(e) => Err((400, format!("the body is not JSON: {e}"))),
    })
    .await
}

/// A query string's pairs, percent-decoded, `+` as a space.
fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

async fn counters(State(st): State<Arc<SimState>>) -> Response {
    let body = serde_json::to_string(&st.counters.snapshot()).unwrap_or_default();
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    r
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>SIM</RequestId></Error>"
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        "application/xml".parse().expect("static header"),
    );
    r
}

async fn s3_object(
    State(st): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key("ts-auth-token") || headers.contains_key("x-org-slug") {
        st.counters.tdp_headers_on_s3();
    }
    let resp = answer_s3(&st, &method, &uri, &headers).await;
    st.counters.request("s3", resp.status().as_u16());
    resp
}

/// `X-Amz-Date`'s ISO 8601 basic format, UTC: `20261126T204100Z`.
fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let dt = time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn parse_amz_date(v: &str) -> Option<SystemTime> {
    let num = |r: std::ops::Range<usize>| v.get(r)?.parse::<u32>().ok();
    if v.len() != 16 || v.as_bytes()[8] != b'T' || !v.ends_with('Z') {
        return None;
    }
    let month = time::Month::try_from(num(4..6)? as u8).ok()?;
    let date = time::Date::from_calendar_date(num(0..4)? as i32, month, num(6..8)? as u8).ok()?;
    let t = time::Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, num(13..15)? as u8).ok()?;
    let secs = date.with_time(t).assume_utc().unix_timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Every answer is dated by the simulated clock (hyper adds a `Date` only where none is).
async fn date_header(
    State(st): State<Arc<SimState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = next.run(req).await;
    if let Ok(v) = httpdate::fmt_http_date(st.now()).parse() {
        resp.headers_mut().insert("date", v);
    }
    resp
}

/// During an outage nothing but the simulator's own counters answers: requests are cut
/// (headers, then a reset body) or left without an answer.
async fn network(
    State(st): State<Arc<SimState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path().starts_with("/_sim/") {
        return next.run(req).await;
    }
    match st.outage() {
        Some(Outage::Reset) => {
            let cut = futures_util::stream::once(async { Err::<Bytes, _>(outage_reset()) });
            Response::new(Body::from_stream(cut))
        }
        Some(Outage::Silent) => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Response::new(Body::empty())
        }
        None => next.run(req).await,
    }
}

fn outage_reset() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "simulated network outage",
    )
}

/// Splits `X-Amz-Signature` off a raw query string.
fn split_signature(query: &str) -> (String, Option<&str>) {
    let mut rest = Vec::new();
    let mut sig = None;
    for pair in query.split('&') {
        match pair.strip_prefix("X-Amz-Signature=") {
            Some(s) => sig = Some(s),
            None => rest.push(pair),
        }
    }
    (rest.join("&"), sig)
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

/// Parses a single `bytes=` range against an object length: Ok(None) means no range.
fn parse_range(value: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = value else { return Ok(None) };
    let spec = v.strip_prefix("bytes=").ok_or(())?;
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        (start, end)
    };
    if start >= len || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

async fn answer_s3(
    st: &Arc<SimState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let query = uri.query().unwrap_or("");
    let (unsigned, sig) = split_signature(query);
    let expected = st.sign(method.as_str(), uri.path(), &unsigned);
    if sig != Some(expected.as_str()) {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    // As S3 does: the link is good until X-Amz-Date + X-Amz-Expires seconds.
    let issued = query_param(query, "X-Amz-Date").and_then(parse_amz_date);
    let lifetime: Option<u64> = query_param(query, "X-Amz-Expires").and_then(|v| v.parse().ok());
    let valid_until = issued
        .zip(lifetime)
        .map(|(i, l)| i + Duration::from_secs(l));
    if valid_until.is_none_or(|until| st.now() > until) {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    // A header the URL signs is part of the signature: without it the signature is wrong.
    let checksum_mode_signed = query_param(query, "X-Amz-SignedHeaders")
        .is_some_and(|h| h.to_ascii_lowercase().contains("x-amz-checksum-mode"));
    let checksum_mode = headers
        .get("x-amz-checksum-mode")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
    if checksum_mode_signed && !checksum_mode {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let key_enc = uri
        .path()
        .strip_prefix(&format!("/{BUCKET}/"))
        .unwrap_or("");
    let key = percent_decode_str(key_enc).decode_utf8_lossy().to_string();
    let Some(obj) = st.obj_by_key(&key) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let shaping = st.shaping();
    tokio::time::sleep(shaping.s3_first_byte).await;

    let faults = st.faults();
    let id = obj.file.id.clone();
    let attempt = st.next_attempt(&id, "s3");
    if st.roll(&id, attempt, 17) < faults.s3_expired {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    if st.roll(&id, attempt, 11) < faults.s3_500 {
        return s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        );
    }
    if st.roll(&id, attempt, 12) < faults.s3_slowdown {
        return s3_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "Please reduce your request rate.",
        );
    }
    let etag = obj.etag().await;
    if let Some(want) = headers.get("if-match").and_then(|v| v.to_str().ok()) {
        if want.trim_matches('"') != etag || faults.s3_changed_at_request == Some(attempt) {
            return s3_error(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            );
        }
    }
    let len = obj.stored_len();
    let range = match parse_range(headers.get("range").and_then(|v| v.to_str().ok()), len) {
        Ok(r) => r,
        Err(()) => {
            let mut r = s3_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            );
            r.headers_mut().insert(
                "content-range",
                format!("bytes */{len}").parse().expect("ascii"),
            );
            return r;
        }
    };
    let (start, end_excl, status) = match range {
        Some((s, e)) => (s, e + 1, StatusCode::PARTIAL_CONTENT),
        None => (0, len, StatusCode::OK),
    };
    if start > 0
        && faults
            .s3_fail_ranges_from_request
            .is_some_and(|n| attempt >= n)
    {
        return s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        );
    }
    let body_len = end_excl - start;

    // Where (if at all) this body goes wrong.
    let cut_at = |kind: u64| start + (st.roll(&id, attempt, kind + 100) * body_len as f64) as u64;
    let failure = if body_len == 0 {
        None
    } else if st.roll(&id, attempt, 13) < faults.s3_reset {
        Some((cut_at(13), BodyFault::Reset))
    } else if st.roll(&id, attempt, 14) < faults.s3_truncate {
        Some((cut_at(14), BodyFault::Truncate))
    } else if st.roll(&id, attempt, 15) < faults.s3_stall {
        Some((cut_at(15), BodyFault::Stall))
    } else {
        None
    };

    let corrupt_at =
        (body_len > 0 && st.roll(&id, attempt, 16) < faults.s3_corrupt).then(|| cut_at(16));
    let pacer = st
        .total_pacer
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    st.counters.stream_open(&obj.file.key);
    let body = BodyState {
        st: st.clone(),
        obj: obj.clone(),
        pos: start,
        end: end_excl,
        failure,
        corrupt_at,
        pacer: StreamPacer::new(shaping.per_connection_bps),
        total: pacer,
    };
    let stream = futures_util::stream::unfold(body, |mut b| async move {
        let item = b.next_chunk().await?;
        Some((item, b))
    });

    let mut builder = Response::builder()
        .status(status)
        .header("content-length", body_len)
        .header("etag", format!("\"{etag}\""))
        .header("accept-ranges", "bytes")
        .header("content-type", "application/octet-stream")
        .header(
            "last-modified",
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_760_000_000)),
        );
    if range.is_some() {
        builder = builder.header(
            "content-range",
            format!("bytes {start}-{}/{len}", end_excl - 1),
        );
    }
    // S3 sends an object's checksum for a range only when the range is the whole object,
    // and a composite object's part checksum for a range that is exactly that part.
    let sums = match (checksum_mode, obj.file.checksum) {
        (true, Some(_)) => obj.checksum().await,
        _ => None,
    };
    if let (Some(algorithm), Some(sums)) = (obj.file.checksum, sums) {
        let kind = if sums.composite {
            "COMPOSITE"
        } else {
            "FULL_OBJECT"
        };
        let value = if start == 0 && end_excl == len {
            Some(sums.whole.clone())
        } else if let Some(part_size) = obj.file.kind.part_size() {
            let p = part_size.max(1);
            let whole_part = start.is_multiple_of(p) && end_excl == (start + p).min(len);
            sums.parts
                .get((start / p) as usize)
                .filter(|_| sums.composite && whole_part)
                .cloned()
        } else {
            None
        };
        if let Some(v) = value {
            builder = builder
                .header(algorithm.header(), v)
                .header("x-amz-checksum-type", kind);
        }
    }
    if obj.file.kind.is_kms() {
        builder = builder
            .header("x-amz-server-side-encryption", "aws:kms")
            .header(
                "x-amz-server-side-encryption-aws-kms-key-id",
                "arn:aws:kms:us-east-1:000000000000:key/sim",
            );
    }
    if obj.file.kind.is_gzip() {
        builder = builder.header("content-encoding", "gzip");
    }
    if let Some(cd) = &obj.file.content_disposition {
        builder = builder.header("content-disposition", cd);
    }
    builder.body(Body::from_stream(stream)).unwrap_or_else(|_| {
        s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "bad header",
        )
    })
}

#[derive(Clone, Copy)]
enum BodyFault {
    Reset,
    Truncate,
    Stall,
}

struct BodyState {
    st: Arc<SimState>,
    obj: Arc<Obj>,
    pos: u64,
    end: u64,
    failure: Option<(u64, BodyFault)>,
    corrupt_at: Option<u64>,
    pacer: StreamPacer,
    total: Arc<TotalPacer>,
}

impl Drop for BodyState {
    fn drop(&mut self) {
        self.st.counters.stream_close(&self.obj.file.key);
    }
}

impl BodyState {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        match self.st.outage() {
            Some(Outage::Reset) => return Some(Err(outage_reset())),
            Some(Outage::Silent) => {
                tokio::time::sleep(Duration::from_secs(600)).await;
                return None;
            }
            None => {}
        }
        let limit = match self.failure {
            Some((at, _)) => at.min(self.end),
            None => self.end,
        };
        if self.pos >= limit {
            return match self.failure {
                Some((_, BodyFault::Reset)) if self.pos < self.end => {
                    Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "simulated connection reset",
                    )))
                }
                Some((_, BodyFault::Stall)) if self.pos < self.end => {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    None
                }
                // A truncated body simply ends before Content-Length.
                _ => None,
            };
        }
        let n = (limit - self.pos).min(CHUNK as u64) as usize;
        let mut buf = match &self.obj.stored {
            Some(bytes) => bytes[self.pos as usize..self.pos as usize + n].to_vec(),
            None => {
                let mut buf = vec![0u8; n];
                fill(self.obj.file.content_seed(), self.pos, &mut buf);
                buf
            }
        };
        if let Some(at) = self.corrupt_at {
            if (self.pos..self.pos + n as u64).contains(&at) {
                buf[(at - self.pos) as usize] ^= 0xFF;
            }
        }
        let chunk = Bytes::from(buf);
        self.pacer.pace(n, &self.total).await;
        self.pos += n as u64;
        self.st.counters.served(n as u64);
        Some(Ok(chunk))
    }
}
