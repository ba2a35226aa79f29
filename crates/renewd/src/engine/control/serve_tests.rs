use chrono::DateTime;
use renewd_issuer::event_channel;
use renewd_store::{SqliteOptions, SqliteStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::*;

fn name(n: &str) -> CertName {
    CertName::new(n).unwrap()
}

/// A daemon whose scheduler queues every certificate asked for, and whose jobs end as
/// `results` says (the store as `prepare` leaves it); returns the lines a client reads for
/// `certs`.
async fn ask_daemon(
    certs: &[&str],
    results: Vec<(CertName, JobResult)>,
    prepare: impl FnOnce(&dyn StateStore),
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> =
        Arc::new(SqliteStore::open_in(dir.path(), SqliteOptions::default()).unwrap());
    prepare(store.as_ref());
    let socket = ControlSocket::bind(dir.path()).unwrap();
    let path = socket.path().to_path_buf();
    let (scheduler, mut commands) = mpsc::channel(4);
    let (finished, _) = broadcast::channel(16);
    let (events, _) = event_channel(16);
    let ctx = ControlContext {
        scheduler,
        finished: finished.clone(),
        events: events.clone(),
        store,
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(socket, ctx, stop.clone()));
    let daemon = tokio::spawn(async move {
        let Some(SchedulerCommand::RenewNow { certs, reply, .. }) = commands.recv().await else {
            panic!("expected RenewNow");
        };
        reply
            .send(RenewNowReply {
                queued: certs,
                ..RenewNowReply::default()
            })
            .unwrap();
        // As the pool does: the job's result first, then its WorkDone.
        for (cert, result) in results {
            events
                .send(IssuerEvent::JobEnded {
                    cert: cert.clone(),
                    result,
                })
                .unwrap();
            finished
                .send(WorkDone {
                    cert,
                    was_renewal: true,
                })
                .unwrap();
        }
    });

    let stream = UnixStream::connect(&path).await.unwrap();
    let (read, mut write) = stream.into_split();
    let certs: Vec<String> = certs.iter().map(|c| format!("\"{c}\"")).collect();
    let request = format!(
        "{{\"renew\": {{\"certs\": [{}], \"force\": true}}}}\n",
        certs.join(", ")
    );
    write.write_all(request.as_bytes()).await.unwrap();
    let mut lines = BufReader::new(read).lines();
    let mut got = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let last = line.starts_with("{\"finish\"");
        got.push(line);
        if last {
            break;
        }
    }
    daemon.await.unwrap();
    stop.cancel();
    server.await.unwrap();
    got
}

#[tokio::test]
async fn deferred_and_already_renewed_are_answered_as_such() {
    let until = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let lines = ask_daemon(
        &["mx", "db"],
        vec![
            (
                name("mx"),
                JobResult::Deferred {
                    until,
                    reason: "no CA can take an order now: a is rate-limiting renewd".into(),
                },
            ),
            (
                name("db"),
                JobResult::AlreadyRenewed {
                    serial: "7c01".into(),
                },
            ),
        ],
        |_| {},
    )
    .await;
    assert_eq!(
        lines,
        [
            r#"{"cert":"mx","result":"deferred","until":"2023-11-14T22:13:20Z","reason":"no CA can take an order now: a is rate-limiting renewd"}"#,
            r#"{"cert":"db","result":"already_renewed","serial":"7c01"}"#,
            r#"{"finish":"done"}"#,
        ]
    );
}

#[tokio::test]
async fn a_lease_held_elsewhere_is_a_deferral_until_the_stored_retry() {
    // The retry time the issuer stores when another process holds the lease (ahead), and
    // a stale one (behind: no promise can be made from it).
    let now = chrono::Utc::now().timestamp();
    let retry = DateTime::from_timestamp(now + 3600, 0).unwrap();
    let stale = DateTime::from_timestamp(now - 3600, 0).unwrap();
    let lines = ask_daemon(
        &["www", "api", "db"],
        vec![
            (name("www"), JobResult::Busy),
            (name("api"), JobResult::Busy),
            (name("db"), JobResult::Busy),
        ],
        |store| {
            store
                .update_cert_state(&name("www"), &mut |s| s.next_attempt = Some(retry))
                .unwrap();
            store
                .update_cert_state(&name("db"), &mut |s| s.next_attempt = Some(stale))
                .unwrap();
        },
    )
    .await;
    let until = retry.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let unfinished = r#"","result":"unfinished","reason":"another renewd process is renewing it"}"#;
    assert_eq!(
        lines,
        [
            format!(
                r#"{{"cert":"www","result":"deferred","until":"{until}","reason":"another renewd process holds the certificate's lease"}}"#
            ),
            // No retry stored, or a stale one: nothing to promise.
            format!(r#"{{"cert":"api{unfinished}"#),
            format!(r#"{{"cert":"db{unfinished}"#),
            r#"{"finish":"done"}"#.to_string(),
        ]
    );
}
