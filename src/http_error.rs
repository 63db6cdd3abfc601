//! Readable text for HTTP client errors: reqwest's own message plus its causes, and never the
//! request URL (a pre-signed URL carries credentials).

pub fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out waiting for data".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the response".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = source {
        let msg = s.to_string();
        if !msg.is_empty() && msg != last {
            text.push_str(": ");
            text.push_str(&msg);
            last = msg;
        }
        source = s.source();
    }
    text
}
