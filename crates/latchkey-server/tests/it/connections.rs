//! The connection loop of `latchkey serve` (see `latchkey_server::serve::connections`): slow, silent,
//! idle and oversized clients are cut off, and SIGTERM ends the process within its grace
//! period with last-use times written.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::process::{bootstrap, call, create_token, verify, Node};

fn start(dir: &tempfile::TempDir) -> (Node, String, String) {
    let database = format!("sqlite://{}", dir.path().join("connections.db").display());
    let (admin, user) = bootstrap(&database);
    let node = Node::start_with(
        &database,
        dir.path(),
        "connections",
        &["--header-timeout", "1", "--shutdown-grace", "1"],
    );
    (node, admin, user)
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
fn read_until_closed(stream: &mut TcpStream, started: Instant) -> (String, Duration) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn silent_slow_idle_and_oversized_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (node, _, _) = start(&dir);
    let address = ("127.0.0.1", node.port());

    // Connects and says nothing.
    let started = Instant::now();
    let mut silent = TcpStream::connect(address).unwrap();
    let (_, after) = read_until_closed(&mut silent, started);
    assert!(
        after < Duration::from_secs(3),
        "silent client kept {after:?}"
    );

    // Sends its headers a byte every 200 ms (slowloris): the deadline is for all of them.
    let started = Instant::now();
    let mut slow = TcpStream::connect(address).unwrap();
    let head = b"GET /client/v4/user/tokens HTTP/1.1\r\nHost: latchkey\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in head {
        if slow.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let (_, after) = read_until_closed(&mut slow, started);
    assert!(after < Duration::from_secs(4), "slow client kept {after:?}");

    // One request, then idle on the kept-alive connection.
    let started = Instant::now();
    let mut idle = TcpStream::connect(address).unwrap();
    idle.write_all(b"GET /elsewhere HTTP/1.1\r\nHost: latchkey\r\n\r\n")
        .unwrap();
    let (answer, after) = read_until_closed(&mut idle, started);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("\"code\":7003"), "{answer}");
    assert!(
        after < Duration::from_secs(3),
        "idle connection kept {after:?}"
    );

    // A 100 KiB header.
    let mut big = TcpStream::connect(address).unwrap();
    let request = format!(
        "GET /client/v4/user/tokens HTTP/1.1\r\nHost: latchkey\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let _ = big.write_all(request.as_bytes());
    let (answer, _) = read_until_closed(&mut big, Instant::now());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_within_the_grace_period_and_writes_last_use_times() {
    let dir = tempfile::tempdir().unwrap();
    let (node, admin, user) = start(&dir);
    let (id, secret) = create_token(&node, &admin, &user, "used just before SIGTERM").await;
    assert_eq!(verify(&node, &secret).await, 200);
    // A request still in flight: a body promised and never sent.
    let mut stuck = TcpStream::connect(("127.0.0.1", node.port())).unwrap();
    stuck
        .write_all(
            format!(
                "POST /client/v4/user/tokens HTTP/1.1\r\nHost: latchkey\r\n\
                 Authorization: Bearer {admin}\r\nContent-Type: application/json\r\n\
                 Content-Length: 1000\r\n\r\n{{\"name\":"
            )
            .as_bytes(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let database = format!("sqlite://{}", dir.path().join("connections.db").display());
    let (took, success) = node.terminate(Duration::from_secs(10));
    assert!(success, "exit status");
    assert!(
        took < Duration::from_secs(4),
        "1 s grace, yet it took {took:?}"
    );
    // The verify above was recorded in memory only; shutdown wrote it.
    let node = Node::start_with(&database, dir.path(), "after", &[]);
    let (status, body) = call(
        reqwest::Method::GET,
        &format!("{}/user/tokens/{id}", node.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["result"]["last_used_on"].is_string(),
        "last use lost: {body}"
    );
}

/// HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then nothing.
fn idle_http2(address: (&str, u16)) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    stream
}

/// Issue 24: an HTTP/2 connection that sent its preface and SETTINGS, then nothing, stayed
/// open for ever, and so did a request whose body came a byte every few seconds.
#[test]
fn idle_http2_connections_and_slow_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("h2.db").display());
    let (admin, _) = bootstrap(&database);
    let args = ["--header-timeout", "1", "--body-timeout", "1"];
    let node = Node::start_with(&database, dir.path(), "h2", &args);
    let address = ("127.0.0.1", node.port());

    let started = Instant::now();
    let mut idle = idle_http2(address);
    let (_, after) = read_until_closed(&mut idle, started);
    assert!(after < Duration::from_secs(4), "idle HTTP/2 kept {after:?}");

    let started = Instant::now();
    let mut slow = TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /client/v4/user/tokens HTTP/1.1\r\nHost: latchkey\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.set_nonblocking(true).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slow body was kept"
        );
        match slow.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        if slow.write_all(b" ").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":1018"), "{answer}");
}

/// Issue 24: with `ulimit -n 1024`, 1,100 idle HTTP/2 connections took the service down
/// (verify timed out, and every refused accept was a log line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_idle_connections_than_descriptors_do_not_stop_verify() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("fd.db").display());
    let (admin, _) = bootstrap(&database);
    let args = ["--header-timeout", "2"];
    let node = Node::start_with_descriptors(&database, dir.path(), "fd", &args, 128);
    let address = ("127.0.0.1", node.port());
    let held: Vec<TcpStream> = (0..250).map(|_| idle_http2(address)).collect();
    let started = Instant::now();
    assert_eq!(verify(&node, &admin).await, 200, "{}", node.log());
    println!(
        "verify answered after {:?} with 250 idle connections held",
        started.elapsed()
    );
    drop(held);
    let complaints = node.log().matches("cannot accept a connection").count();
    assert!(
        complaints <= 1,
        "{complaints} accept complaints:\n{}",
        node.log()
    );
}
