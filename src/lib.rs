//! TDP Bulk Downloader engine: resolves TetraScience Data Platform file IDs to pre-signed S3
//! URLs and streams them to disk, resumably and verifiably. Knows nothing of any UI.

pub mod sim;
