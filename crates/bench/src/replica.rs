//! A faithful replica of the published notebook's algorithm, for the benchmark only: one pool
//! of 25 connections shared by API and S3 calls (a FIFO semaphore, as aiohttp's connector
//! queues), every ID gathered at once, the TDP headers on every request (S3 included), retry
//! on 502 only (3 attempts, random 0.1–3 s), every body held in memory until all are done.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, Args)]
pub struct ReplicaArgs {
    #[arg(long)]
    base_url: String,
    #[arg(long)]
    org: String,
    #[arg(long)]
    ids: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 25)]
    limit: usize,
}

struct Session {
    http: reqwest::Client,
    pool: Semaphore,
    token: String,
    org: String,
}

impl Session {
    /// One request through the shared pool, retried on 502 only; the body read whole.
    async fn get(&self, url: &str, query: &[(&str, &str)]) -> Result<bytes::Bytes, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = self.pool.acquire().await.map_err(|e| e.to_string())?;
            let mut resp = self
                .http
                .get(url)
                .query(query)
                .header("ts-auth-token", &self.token)
                .header("x-org-slug", &self.org)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            // Read whole, as aiohttp's read() does: one buffer of the announced size.
            let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                body.extend_from_slice(&chunk);
            }
            drop(permit);
            if status == 502 && attempt < 3 {
                let wait = 0.1 + fastrand::f64() * 2.9;
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                continue;
            }
            return Ok(body.into());
        }
    }
}

async fn download_task(
    s: Arc<Session>,
    base: String,
    id: String,
) -> Result<(String, bytes::Bytes), String> {
    let json = s
        .get(
            &format!("{base}/v1/datalake/retrieve"),
            &[("fileId", &id), ("getPresigned", "true")],
        )
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    let url = v["url"]
        .as_str()
        .ok_or_else(|| format!("no url for {id}"))?
        .to_string();
    let body = s.get(&url, &[]).await?;
    Ok((id, body))
}

pub async fn run(args: ReplicaArgs) -> ExitCode {
    let token = std::env::var("TDP_TOKEN").unwrap_or_default();
    let ids = match std::fs::read_to_string(&args.ids) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let http = match reqwest::Client::builder()
        .pool_max_idle_per_host(args.limit)
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let session = Arc::new(Session {
        http,
        pool: Semaphore::new(args.limit),
        token,
        org: args.org,
    });
    let started = std::time::Instant::now();
    let base = args
        .base_url
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .to_string();
    let tasks: Vec<_> = ids
        .split_whitespace()
        .map(|id| tokio::spawn(download_task(session.clone(), base.clone(), id.to_string())))
        .collect();
    // asyncio.gather: one failure fails the batch; every body stays in memory until the end.
    let mut files = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(Ok(f)) => files.push(f),
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let downloaded = started.elapsed().as_secs_f64();
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    for (id, body) in &files {
        if let Err(e) = std::fs::write(args.out.join(id), body) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    eprintln!(
        "replica: downloaded in {downloaded:.3} s, written by {:.3} s",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
