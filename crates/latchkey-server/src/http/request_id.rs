//! Request ids: every answer carries `x-request-id`, and every log line written while
//! handling the request carries the same id (see [`crate::logs`]). A
//! well-formed id sent by the client or a proxy (up to 64 of `A-Z a-z 0-9 . _ -`) is kept,
//! so one id follows a request through a gateway; otherwise latchkey makes one: 8 hex
//! digits fixed per process, then a counter (taken by each thread in blocks).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The header, in requests and answers.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of a request: the caller's when well-formed, else a new one.
pub fn for_request(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(HEADER)
        .filter(|value| well_formed(value.as_bytes()))
        .cloned()
        .unwrap_or_else(fresh)
}

fn well_formed(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Counter values a thread takes at a time, so that threads do not take turns writing one
/// shared counter on every request.
const BLOCK: u64 = 1024;

/// The next counter value: unique within the process, increasing within a thread.
fn next_count() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        /// The next value of this thread's block, and the end of the block.
        static BLOCK_LEFT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    BLOCK_LEFT.with(|left| {
        let (mut next, mut end) = left.get();
        if next == end {
            next = NEXT.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        left.set((next + 1, end));
        next
    })
}

fn fresh() -> HeaderValue {
    static PROCESS: OnceLock<u32> = OnceLock::new();
    let process = *PROCESS.get_or_init(rand::random);
    let n = next_count();
    // 4 bytes of process, the low 6 of the counter: 20 hex digits, without `format!`
    // (this runs for every request).
    let mut bytes = [0u8; 10];
    bytes[..4].copy_from_slice(&process.to_be_bytes());
    bytes[4..].copy_from_slice(&n.to_be_bytes()[2..]);
    let mut text = [0u8; 20];
    hex::encode_to_slice(bytes, &mut text).expect("20 digits for 10 bytes");
    HeaderValue::from_bytes(&text).expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_well_formed_id_and_replaces_others() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("gw-1.abc_DEF"));
        assert_eq!(for_request(&headers), "gw-1.abc_DEF");
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            headers.insert(HEADER, HeaderValue::from_str(bad).unwrap());
            let id = for_request(&headers);
            assert_ne!(id, bad);
            assert_eq!(id.len(), 20);
        }
    }

    #[test]
    fn fresh_ids_differ() {
        let headers = HeaderMap::new();
        assert_ne!(for_request(&headers), for_request(&headers));
    }
}
