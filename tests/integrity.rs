//! Integrity for the objects TDP stores: multipart ETags checked part by part, damaged bodies
//! fetched again within the file's retry budget, a part size guessed wrong told from damage,
//! and a file that never verifies failed with kind `integrity`, never placed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use tdp_engine::job::report::Status;
use tdp_engine::store::state::Verified;
use tdp_engine::ErrorKind;
use tdp_sim::{sim_id, Faults, FileKind, SimFile};

const MIB: u64 = 1 << 20;

/// How many files were fetched again because their bytes did not verify.
fn fetched_again(events: &[tdp_engine::Event]) -> usize {
    let ids: std::collections::HashSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            tdp_engine::Event::FileRetrying {
                file_id,
                kind: ErrorKind::Integrity,
                ..
            } => Some(file_id.as_str()),
            _ => None,
        })
        .collect();
    ids.len()
}

fn multipart(seed: u64, n: u64, size: impl Fn(u64) -> u64, part_size: u64) -> Vec<SimFile> {
    (0..n)
        .map(|i| {
            SimFile::new(
                sim_id(seed, i),
                format!("org/raw/mp{seed}-{i}.raw"),
                size(i),
            )
            .kind(FileKind::Multipart { part_size })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_objects_with_damaged_bodies_all_verify_part_by_part() {
    // 16 objects uploaded in 8 MiB parts (three parts each, the last one short), and one
    // changed byte in 20% of the bodies S3 sends.
    let files = multipart(301, 16, |i| 2 * 8 * MIB + 1 + i * 100_000, 8 * MIB);
    let sim = start(files.clone(), |c| {
        c.faults = Faults {
            s3_corrupt: 0.2,
            ..Faults::default()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (done, events) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert!(done.fatal.is_none(), "{:?}", done.fatal);
    assert_eq!(done.summary.downloaded, 16, "{:?}", done.summary);
    assert_all_landed(dir.path(), &done.rows, &files);
    for row in &done.rows {
        assert_eq!(row.verified, Some(Verified::MultipartMd5), "{row:?}");
    }
    let fetched_again = fetched_again(&events);
    eprintln!("{fetched_again} of 16 fetched again after a damaged body");
    assert!(fetched_again > 0, "the fault never fired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_objects_with_damaged_bodies_all_verify() {
    let files: Vec<SimFile> = (0..40)
        .map(|i| SimFile::new(sim_id(302, i), format!("org/raw/p{i}.bin"), 300_000 + i))
        .collect();
    let sim = start(files.clone(), |c| {
        c.faults = Faults {
            s3_corrupt: 0.05,
            ..Faults::default()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (done, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert_eq!(done.summary.downloaded, 40, "{:?}", done.summary);
    assert_all_landed(dir.path(), &done.rows, &files);
    assert!(done.rows.iter().all(|r| r.verified == Some(Verified::Md5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_of_an_unguessable_size_are_checked_by_size_after_one_second_fetch() {
    // 20 MiB in 7 MiB parts: three parts, as 8 MiB would give. The 8 MiB digest cannot
    // match; the same bytes twice show it was the guess, not the transfer.
    let guessed_wrong = multipart(303, 1, |_| 20 * MIB, 7 * MIB);
    // TetraScience's ~100 MB parts: no uploader's size gives that count; size alone.
    let variable = multipart(304, 1, |_| 250_000_000, 100_000_000);
    let files: Vec<SimFile> = guessed_wrong.iter().chain(&variable).cloned().collect();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let (done, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert_eq!(done.summary.downloaded, 2, "{:?}", done.summary);
    assert_all_landed(dir.path(), &done.rows, &files);
    for f in &files {
        assert_eq!(row_for(&done.rows, &f.id).verified, Some(Verified::Size));
    }
    let served = sim.counters().bytes_served;
    assert_eq!(
        served,
        2 * 20 * MIB + 250_000_000,
        "the 7 MiB one twice, the other once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_never_verifies_fails_with_kind_integrity_and_is_not_placed() {
    let files = multipart(305, 1, |_| 17 * MIB, 8 * MIB);
    let sim = start(files.clone(), |c| {
        c.faults = Faults {
            s3_corrupt: 1.0,
            ..Faults::default()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.retry.budget = 3;
    let (done, events) = run(cfg, sim.token(), &ids_of(&files)).await;
    let row = row_for(&done.rows, &files[0].id);
    assert_eq!(row.status, Status::Failed);
    assert_eq!(row.kind, Some(ErrorKind::Integrity));
    assert!(
        row.error
            .as_deref()
            .unwrap_or("")
            .ends_with("after 3 attempts"),
        "{:?}",
        row.error
    );
    assert!(!dir.path().join("mp305-0.raw").exists());
    // Fetched again twice (three attempts, the retry budget) before it was given up.
    assert_eq!(fetched_again(&events), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_checksum_is_the_check_where_the_etag_is_no_md5() {
    // KMS objects (their ETag is no MD5) and parts of an untold size, each with the MD5 a
    // search gives as file.checksum: checked against it, and said so.
    let mut files: Vec<SimFile> = (0..4)
        .map(|i| {
            SimFile::new(
                sim_id(306, i),
                format!("org/src/RAW/kms{i}.bin"),
                400_000 + i,
            )
            .kind(FileKind::Kms)
        })
        .collect();
    files.push(
        SimFile::new(sim_id(306, 9), "org/src/RAW/parts7.bin", 20 * MIB)
            .kind(FileKind::Multipart { part_size: 7 * MIB }),
    );
    let files: Vec<SimFile> = files
        .into_iter()
        .map(|f| f.category("RAW").with_md5_checksum())
        .collect();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let search = tdp_engine::Search::parse_query("category=RAW").unwrap();
    let (done, _) = run_search(config(&sim, dir.path()), sim.token(), &search).await;
    assert_eq!(done.summary.downloaded, files.len(), "{:?}", done.summary);
    assert_all_landed(dir.path(), &done.rows, &files);
    for f in &files {
        let row = row_for(&done.rows, &f.id);
        assert_eq!(row.verified, Some(Verified::SearchChecksum), "{}", f.key);
        assert_eq!(row.md5, f.meta.checksum, "{}", f.key);
    }
    // The wrong part-size guess cost nothing: the whole MD5 held.
    let served = sim.counters().bytes_served;
    assert_eq!(served, 20 * MIB + (0..4).map(|i| 400_000 + i).sum::<u64>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_checksums_are_asked_for_where_the_url_signs_checksum_mode_and_checked() {
    use tdp_sim::StoredChecksum as C;
    // KMS objects (no MD5 anywhere), fetched in several ranges and in one; a multipart
    // object of a part size no guess gives; one changed byte in 20% of the bodies.
    let kms = |i: u64, size: u64, c: C| {
        SimFile::new(sim_id(305, i), format!("org/raw/k{i}.bin"), size)
            .kind(FileKind::Kms)
            .stored_checksum(c)
    };
    let mut files = vec![
        kms(0, 20 * MIB + 3, C::Crc64Nvme),
        kms(1, 300_000, C::Crc64Nvme),
        kms(2, 9 * MIB, C::Crc32c),
        kms(3, 700_000, C::Crc32),
        kms(4, 12 * MIB + 5, C::Sha256),
    ];
    for i in 5..12 {
        files.push(kms(i, 1_000_000 + i, C::Crc64Nvme));
    }
    files.push(
        SimFile::new(sim_id(305, 12), "org/raw/mp7.bin", 20 * MIB)
            .kind(FileKind::Multipart { part_size: 7 * MIB })
            .stored_checksum(C::Crc64Nvme),
    );
    let sim = start(files.clone(), |c| {
        c.sign_checksum_mode = true;
        c.faults = Faults {
            s3_corrupt: 0.2,
            ..Faults::default()
        }
    })
    .await;
    // As S3 does: a URL that signs the header is refused without it.
    let url = presigned(&sim, &files[1].id).await;
    assert!(url.contains("x-amz-checksum-mode"), "{url}");
    let bare = reqwest::get(&url).await.unwrap();
    assert_eq!(bare.status(), 403);

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.part_size = 4 * MIB;
    let (done, events) = run(cfg, sim.token(), &ids_of(&files)).await;
    assert!(done.fatal.is_none(), "{:?}", done.fatal);
    assert_eq!(done.summary.downloaded, files.len(), "{:?}", done.summary);
    assert_all_landed(dir.path(), &done.rows, &files);
    let want = [
        Verified::Crc64Nvme,
        Verified::Crc64Nvme,
        Verified::Crc32c,
        Verified::Crc32,
        Verified::Sha256,
    ];
    for (f, w) in files.iter().zip(want) {
        assert_eq!(row_for(&done.rows, &f.id).verified, Some(w), "{}", f.key);
    }
    for f in &files[5..] {
        assert_eq!(
            row_for(&done.rows, &f.id).verified,
            Some(Verified::Crc64Nvme),
            "{}",
            f.key
        );
    }
    let c = sim.counters();
    // The one refusal is the bare GET above: every request of the job sent the header.
    assert_eq!(c.count("s3 403"), 1, "{:?}", c.requests);
    let fetched_again = fetched_again(&events);
    eprintln!(
        "{fetched_again} of {} fetched again after a damaged body",
        files.len()
    );
    assert!(fetched_again > 0, "the fault never fired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_kms_objects_are_checked_by_their_trailer_and_damage_is_fetched_again() {
    // What TetraScience's SDK stores: gzip-encoded and KMS-encrypted. A changed byte in
    // 25% of the bodies (inside the compressed stream) and bodies cut short in 10%.
    let files: Vec<SimFile> = (0..24)
        .map(|i| {
            SimFile::new(
                sim_id(306, i),
                format!("org/ids/g{i}.json"),
                200_000 + i * 1_000,
            )
            .kind(FileKind::KmsGzip)
        })
        .collect();
    let sim = start(files.clone(), |c| {
        c.faults = Faults {
            s3_corrupt: 0.25,
            s3_truncate: 0.1,
            ..Faults::default()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (done, events) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert!(done.fatal.is_none(), "{:?}", done.fatal);
    assert_eq!(done.summary.downloaded, 24, "{:?}", done.summary);
    assert_all_landed(dir.path(), &done.rows, &files);
    for r in &done.rows {
        assert_eq!(r.verified, Some(Verified::GzipCrc32), "{r:?}");
    }
    let fetched_again = fetched_again(&events);
    eprintln!("{fetched_again} of 24 fetched again after a damaged body");
    assert!(fetched_again > 0, "the fault never fired");
    assert!(
        sim.counters().count("s3 206") > 24 + fetched_again as u64,
        "no body was cut short"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_file_is_checked_by_its_crc_with_what_the_last_run_wrote_read_back() {
    use tdp_sim::StoredChecksum as C;
    let files: Vec<SimFile> = (0..4)
        .map(|i| {
            SimFile::new(sim_id(307, i), format!("org/raw/r{i}.bin"), 12 * MIB + i)
                .kind(FileKind::Kms)
                .stored_checksum(C::Crc64Nvme)
        })
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |c| {
        c.sign_checksum_mode = true;
        c.shaping.total_bps = Some(16_000_000);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = || {
        let mut c = config(&sim, dir.path());
        c.part_size = 2 * MIB;
        c
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let trigger = cancel.clone();
    let watch = async {
        while sim.counters().bytes_served < total / 2 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        trigger.cancel();
    };
    let input = ids_of(&files);
    let ((first, _), ()) = tokio::join!(
        run_cancellable(cfg(), sim.token(), &input, cancel.clone()),
        watch
    );
    assert!(
        first.cancelled && first.summary.cancelled > 0,
        "{:?}",
        first.summary
    );
    sim.set_shaping(Default::default());
    let (done, _) = run(cfg(), sim.token(), &input).await;
    assert_all_landed(dir.path(), &done.rows, &files);
    for f in &files {
        assert_eq!(
            row_for(&done.rows, &f.id).verified,
            Some(Verified::Crc64Nvme)
        );
    }
    let served = sim.counters().bytes_served;
    eprintln!(
        "both runs fetched {:.1}% of the data",
        served as f64 * 100.0 / total as f64
    );
    assert!(served < total * 13 / 10, "fetched {served} for {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_part_of_a_composite_checksum_object_is_fetched_again_alone() {
    use tdp_sim::StoredChecksum as C;
    // KMS-encrypted (the ETag is no MD5), uploaded in 5 MiB parts with composite checksums
    // (the job's own part size is 8 MiB): four parts each, one changed byte in 20% of the
    // bodies.
    let files: Vec<SimFile> = (0..8)
        .map(|i| {
            let c = [C::Crc32c, C::Crc32, C::Sha256][i as usize % 3];
            SimFile::new(
                sim_id(308, i),
                format!("org/raw/c{i}.bin"),
                3 * 5 * MIB + 1 + i,
            )
            .kind(FileKind::KmsMultipart { part_size: 5 * MIB })
            .stored_checksum(c)
        })
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |c| {
        c.sign_checksum_mode = true;
        c.faults = Faults {
            s3_corrupt: 0.2,
            ..Faults::default()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (done, events) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert!(done.fatal.is_none(), "{:?}", done.fatal);
    assert_eq!(done.summary.downloaded, 8, "{:?}", done.summary);
    assert_all_landed(dir.path(), &done.rows, &files);
    let want = [Verified::Crc32c, Verified::Crc32, Verified::Sha256];
    for (i, f) in files.iter().enumerate() {
        assert_eq!(
            row_for(&done.rows, &f.id).verified,
            Some(want[i % 3]),
            "{}",
            f.key
        );
    }
    let reasons: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            tdp_engine::Event::FileRetrying {
                kind: ErrorKind::Integrity,
                reason,
                ..
            } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    let parts_again = reasons
        .iter()
        .filter(|r| r.contains("did not match S3's"))
        .count();
    let c = sim.counters();
    eprintln!(
        "{parts_again} parts fetched again; {:.1}% of the data fetched; {reasons:?}",
        c.bytes_served as f64 * 100.0 / total as f64
    );
    assert!(parts_again > 0, "the fault never fired");
    // Only the damaged parts were fetched again, never a whole file.
    assert!(
        reasons.iter().all(|r| !r.contains("downloading it again")),
        "{reasons:?}"
    );
    // The first request of each file is open-ended (S3 sends the whole object's checksum
    // only so) and cut after the first part: a few MiB past a part each at most.
    assert!(
        c.bytes_served <= total + (parts_again as u64 + files.len() as u64) * 5 * MIB,
        "fetched {} for {total}",
        c.bytes_served
    );
}
