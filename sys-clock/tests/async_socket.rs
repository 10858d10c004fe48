//! The tokio wrapper: a timestamped round trip on loopback, bounded in time.

#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tempora_sys_clock::{AsyncTimestampedSocket, TimestampMode, TimestampedSocket};

#[tokio::test(flavor = "current_thread")]
async fn async_round_trip_with_timestamps() {
    let bind = |_| {
        TimestampedSocket::bind("127.0.0.1:0".parse().unwrap(), TimestampMode::Software).unwrap()
    };
    let mut a = AsyncTimestampedSocket::new(bind(0)).unwrap();
    let b = AsyncTimestampedSocket::new(bind(1)).unwrap();
    let to = b.get_ref().socket().local_addr().unwrap();
    let run = async {
        let id = a.send_to(b"async", to).await.unwrap();
        let mut buf = [0u8; 16];
        let received = b.recv_from(&mut buf).await.unwrap();
        let tx = a.recv_tx_timestamp().await.unwrap();
        (id, received, tx, buf)
    };
    let (id, received, tx, buf) = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("no hang");
    assert_eq!(&buf[..received.len], b"async");
    assert_eq!(tx.id, id);
    let rx = received.timestamp.unwrap();
    assert!(tx.timestamp.nanos <= rx.nanos && rx.nanos - tx.timestamp.nanos < 1_000_000);
}
