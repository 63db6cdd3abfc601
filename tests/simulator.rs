//! The simulator tests itself: it must behave like TDP and S3 where the engine relies on it,
//! and shape traffic as configured.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use std::time::{Duration, Instant};
use tdp_sim::{sim_id, FileKind, SimFile};

fn file(i: u64, size: u64) -> SimFile {
    SimFile::new(sim_id(21, i), format!("org/src/RAW/f{i}.bin"), size)
}

#[tokio::test]
async fn retrieve_checks_auth_and_ids_like_tdp() {
    let sim = start(vec![file(0, 10)], |_| {}).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/datalake/retrieve?fileId={}&getPresigned=true",
        sim.base_url(),
        sim_id(21, 0)
    );
    let r = http
        .get(&url)
        .header("ts-auth-token", "x")
        .header("x-org-slug", sim.org())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Invalid token");
    let r = http
        .get(&url)
        .header("ts-auth-token", sim.token())
        .header("x-org-slug", "other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let unknown = format!(
        "{}/v1/datalake/retrieve?fileId={}&getPresigned=true",
        sim.base_url(),
        sim_id(22, 0)
    );
    let r = http
        .get(&unknown)
        .header("ts-auth-token", sim.token())
        .header("x-org-slug", sim.org())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let bad = format!(
        "{}/v1/datalake/retrieve?fileId=nope&getPresigned=true",
        sim.base_url()
    );
    let r = http
        .get(&bad)
        .header("ts-auth-token", sim.token())
        .header("x-org-slug", sim.org())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let c: tdp_sim::CountersSnapshot = http
        .get(format!("{}/_sim/counters", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c.count("retrieve 401"), 1);
    assert_eq!(c.count("retrieve 404"), 1);
}

#[tokio::test]
async fn s3_refuses_tampered_expired_and_head_requests() {
    let sim = start(vec![file(0, 1000)], |c| c.url_ttl = Duration::from_secs(1)).await;
    let http = reqwest::Client::new();
    let url = presigned(&sim, &sim_id(21, 0)).await;

    let ok = http.get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.unwrap().len(), 1000);

    let tampered = url.replace("f0.bin", "f1.bin");
    let r = http.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<Code>SignatureDoesNotMatch</Code>"));

    let r = http.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 403, "HEAD on a GET-signed URL");

    // X-Amz-Date is whole seconds: a 1-second link is dead 2 seconds after it was issued.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<Code>AccessDenied</Code>") && body.contains("Request has expired"),
        "{body}"
    );
}

#[tokio::test]
async fn s3_serves_ranges_etags_and_encodings() {
    let files = vec![
        file(0, 100_000),
        file(1, 5000).kind(FileKind::Kms),
        file(2, 5000).kind(FileKind::Gzip),
        file(3, 0),
    ];
    let sim = start(files.clone(), |_| {}).await;
    let http = reqwest::Client::builder().no_gzip().build().unwrap();
    let url = presigned(&sim, &files[0].id).await;
    let r = http
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/100000");
    let etag = r.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_string();
    assert_eq!(etag, expected_md5(&files[0]));
    assert_eq!(
        &r.bytes().await.unwrap()[..],
        &files[0].expected_content()[10..20]
    );
    let r = http
        .get(&url)
        .header("range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = http
        .get(&url)
        .header("if-match", "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);

    let r = http
        .get(presigned(&sim, &files[1].id).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-amz-server-side-encryption"], "aws:kms");
    let kms_etag = r.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_string();
    assert_eq!(kms_etag.len(), 32);
    assert_ne!(kms_etag, md5_hex(&r.bytes().await.unwrap()));

    let r = http
        .get(presigned(&sim, &files[2].id).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let raw = r.bytes().await.unwrap();
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut decoded).unwrap();
    assert_eq!(decoded, files[2].expected_content());

    let r = http
        .get(presigned(&sim, &files[3].id).await)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */0");
}

async fn timed_download(urls: Vec<String>) -> Duration {
    let http = reqwest::Client::new();
    let t = Instant::now();
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|u| {
            let http = http.clone();
            tokio::spawn(async move {
                http.get(u)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
                    .len()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    t.elapsed()
}

/// Shaping is part of what the simulator promises (benchmarks rely on it): within ±10%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaping_is_within_ten_percent_of_its_settings() {
    let files: Vec<SimFile> = (0..4).map(|i| file(i, 2_000_000)).collect();
    let sim = start(files.clone(), |c| {
        c.shaping.per_connection_bps = Some(4_000_000);
        c.shaping.s3_first_byte = Duration::from_millis(100);
    })
    .await;
    // One stream: 2 MB at 4 MB/s after 100 ms to first byte = 0.6 s.
    let one = timed_download(vec![presigned(&sim, &files[0].id).await]).await;
    assert!(
        (0.54..=0.66).contains(&one.as_secs_f64()),
        "one stream took {one:?}"
    );

    // Four streams under a 4 MB/s total: 8 MB in 2 s (+0.1 s first byte).
    sim.set_shaping(tdp_sim::Shaping {
        total_bps: Some(4_000_000),
        s3_first_byte: Duration::from_millis(100),
        ..Default::default()
    });
    let mut urls = Vec::new();
    for f in &files {
        urls.push(presigned(&sim, &f.id).await);
    }
    let four = timed_download(urls).await;
    assert!(
        (1.89..=2.31).contains(&four.as_secs_f64()),
        "four streams took {four:?}"
    );

    // Both at once: one stream keeps its own rate under a roomy total; eight share the total.
    sim.set_shaping(tdp_sim::Shaping {
        per_connection_bps: Some(4_000_000),
        total_bps: Some(8_000_000),
        ..Default::default()
    });
    let one = timed_download(vec![presigned(&sim, &files[0].id).await]).await;
    assert!(
        (0.45..=0.55).contains(&one.as_secs_f64()),
        "one stream under both took {one:?}"
    );
    let mut urls = Vec::new();
    for f in files.iter().chain(&files) {
        urls.push(presigned(&sim, &f.id).await);
    }
    let eight = timed_download(urls).await;
    assert!(
        (1.8..=2.2).contains(&eight.as_secs_f64()),
        "eight streams under both took {eight:?}"
    );

    // API latency.
    sim.set_shaping(tdp_sim::Shaping {
        api_latency: Duration::from_millis(200),
        ..Default::default()
    });
    let t = Instant::now();
    presigned(&sim, &files[0].id).await;
    let api = t.elapsed().as_secs_f64();
    assert!((0.18..=0.22).contains(&api), "retrieve took {api}");
}

#[tokio::test]
async fn presigned_urls_carry_their_issue_time_and_lifetime_as_s3_does() {
    let sim = start(vec![file(0, 10)], |c| c.url_ttl = Duration::from_secs(300)).await;
    let url = url::Url::parse(&presigned(&sim, &sim_id(21, 0)).await).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["X-Amz-Expires"], "300");
    let date = &q["X-Amz-Date"];
    assert_eq!(date.len(), 16, "{date}");
    assert!(date.ends_with('Z') && date.as_bytes()[8] == b'T', "{date}");
    // The issue time is now, to the second, in UTC.
    let now = httpdate::fmt_http_date(std::time::SystemTime::now());
    let year = &now[12..16];
    assert!(date.starts_with(year), "{date} vs {now}");
    assert!(!q.contains_key("x-sim-expires-ms"));
}
