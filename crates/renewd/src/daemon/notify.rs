//! Messages to the service manager (`sd_notify`).
//!
//! A send to `$NOTIFY_SOCKET` blocks once the service manager stops reading (its queue holds
//! `net.unix.max_dgram_qlen` messages, 10 by default). Sent from a runtime worker, that froze
//! the whole daemon — ACME requests in flight included — so [`SystemdNotifier`] sends from a
//! thread of its own. While a send is stuck, later messages wait in a queue that stays short:
//! a `WATCHDOG=1` is dropped when one already waits, and a newer `STATUS=` replaces a waiting
//! one. State changes (`READY=1`, `RELOADING=1`, `STOPPING=1`) are kept, in order.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Where `READY=1`, `STATUS=`, `WATCHDOG=1`, … go. The daemon uses [`SystemdNotifier`]; tests record.
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Sends `states` as one message. Never blocks on the service manager.
    fn notify(&self, states: &[NotifyState<'_>]);

    /// Waits up to `within` for the messages handed to [`Notifier::notify`] to go out, so
    /// that the last of them (`STOPPING=1`) is not lost when the process exits.
    fn flush(&self, within: Duration) {
        let _ = within;
    }
}

/// One message: its `KEY=VALUE` lines.
type Message = Vec<String>;
/// Sends one message; blocks as long as the socket does.
type SendFn = Box<dyn Fn(&[String]) -> io::Result<()> + Send + Sync>;

/// The real service manager: `$NOTIFY_SOCKET`, or nothing when it is unset.
pub struct SystemdNotifier {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<Outbox>,
    /// Signalled when a message is queued (the sender waits) and when the outbox empties
    /// (`flush` waits).
    changed: Condvar,
}

#[derive(Default)]
struct Outbox {
    queue: VecDeque<Message>,
    /// A message is being sent (possibly stuck in the socket).
    sending: bool,
    failed_before: bool,
}

impl Default for SystemdNotifier {
    fn default() -> Self {
        // sd_notify's `notify` only reads the environment; the `*_and_unset_env` variants
        // are unsafe in a threaded process and are not used.
        SystemdNotifier::with_sender(Box::new(|lines| {
            let states: Vec<NotifyState<'_>> =
                lines.iter().map(|l| NotifyState::Custom(l)).collect();
            sd_notify::notify(&states)
        }))
    }
}

impl SystemdNotifier {
    /// A notifier whose thread hands each message to `send`.
    fn with_sender(send: SendFn) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(Outbox::default()),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("renewd-notify".into())
            .spawn(move || worker.send_forever(&send));
        if let Err(e) = spawned {
            // Without the thread the messages only queue up; the daemon still works, but
            // systemd would not see READY=1, so say why.
            tracing::error!("cannot start the service-manager notification thread: {e}");
        }
        SystemdNotifier { shared }
    }
}

impl fmt::Debug for SystemdNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queued = self.shared.lock().queue.len();
        f.debug_struct("SystemdNotifier")
            .field("queued", &queued)
            .finish()
    }
}

impl Notifier for SystemdNotifier {
    fn notify(&self, states: &[NotifyState<'_>]) {
        let message: Message = states.iter().map(ToString::to_string).collect();
        let mut outbox = self.shared.lock();
        outbox.enqueue(message);
        drop(outbox);
        self.shared.changed.notify_all();
    }

    fn flush(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut outbox = self.shared.lock();
        while outbox.sending || !outbox.queue.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                tracing::debug!(
                    "{} message(s) to the service manager not sent before exit",
                    outbox.queue.len() + usize::from(outbox.sending)
                );
                return;
            };
            outbox = match self.shared.changed.wait_timeout(outbox, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Outbox> {
        // The outbox is consistent after every statement; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send_forever(&self, send: &SendFn) {
        let mut outbox = self.lock();
        loop {
            let Some(message) = outbox.queue.pop_front() else {
                outbox = match self.changed.wait(outbox) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                continue;
            };
            outbox.sending = true;
            drop(outbox);
            let result = send(&message);
            outbox = self.lock();
            outbox.sending = false;
            let first_failure = result.is_err() && !outbox.failed_before;
            outbox.failed_before |= result.is_err();
            if outbox.queue.is_empty() {
                self.changed.notify_all();
            }
            // Logged without the lock: a log sink that blocks must not block `notify`.
            if let Err(e) = result {
                drop(outbox);
                if first_failure {
                    tracing::warn!("cannot notify the service manager ($NOTIFY_SOCKET): {e}");
                } else {
                    tracing::debug!("cannot notify the service manager: {e}");
                }
                outbox = self.lock();
            }
        }
    }
}

impl Outbox {
    /// Queues `message`, keeping the queue short: a waiting `WATCHDOG=1` makes another one
    /// redundant, and a waiting `STATUS=` is out of date once a newer one comes. The newer
    /// status goes to the back, after any state change queued meanwhile (which may carry a
    /// `STATUS=` of its own), so the last status systemd reads is the newest.
    fn enqueue(&mut self, message: Message) {
        match kind(&message) {
            Kind::Ping if self.queue.iter().any(|m| kind(m) == Kind::Ping) => {}
            Kind::Status => {
                self.queue.retain(|m| kind(m) != Kind::Status);
                self.queue.push_back(message);
            }
            _ => self.queue.push_back(message),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// `WATCHDOG=1` alone.
    Ping,
    /// `STATUS=` alone.
    Status,
    /// Anything else: a state change, kept as it is.
    Other,
}

fn kind(message: &Message) -> Kind {
    match message.as_slice() {
        [one] if one == "WATCHDOG=1" => Kind::Ping,
        [one] if one.starts_with("STATUS=") => Kind::Status,
        _ => Kind::Other,
    }
}

/// The wire form of `states`: one `KEY=VALUE` per line.
pub fn notify_wire(states: &[NotifyState<'_>]) -> String {
    states.iter().map(|s| format!("{s}\n")).collect()
}

/// `STATUS=` must be one line.
pub fn one_line(status: &str) -> String {
    status.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn wire_form() {
        assert_eq!(
            notify_wire(&[NotifyState::Ready, NotifyState::Status("2 certificates")]),
            "READY=1\nSTATUS=2 certificates\n"
        );
        assert_eq!(one_line("a\nb  c"), "a b c");
    }

    struct Manager {
        notifier: SystemdNotifier,
        /// One message per send begun.
        entered: mpsc::Receiver<()>,
        /// One message lets one send through.
        release: mpsc::Sender<()>,
        sent: mpsc::Receiver<Message>,
    }

    /// A service manager that has stopped reading: each send blocks until the test lets
    /// it through, and what got through is recorded.
    fn stuck_manager() -> Manager {
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let (sent_tx, sent) = mpsc::channel::<Message>();
        let release_rx = Mutex::new(release_rx);
        let entered_tx = Mutex::new(entered_tx);
        let notifier = SystemdNotifier::with_sender(Box::new(move |lines| {
            let _ = entered_tx.lock().expect("one sender thread").send(());
            release_rx
                .lock()
                .expect("one sender thread")
                .recv()
                .map_err(|_| io::Error::other("test over"))?;
            sent_tx
                .send(lines.to_vec())
                .map_err(|_| io::Error::other("test over"))
        }));
        Manager {
            notifier,
            entered,
            release,
            sent,
        }
    }

    /// [`stuck_manager`], stuck sending a first `WATCHDOG=1`.
    fn stuck_on_a_ping() -> Manager {
        let manager = stuck_manager();
        manager.notifier.notify(&[NotifyState::Watchdog]);
        manager
            .entered
            .recv_timeout(Duration::from_secs(30))
            .expect("the first ping is being sent, and is stuck");
        manager
    }

    #[test]
    fn a_manager_that_does_not_read_never_blocks_the_caller_and_the_queue_stays_short() {
        let Manager {
            notifier,
            release,
            sent,
            ..
        } = stuck_on_a_ping();
        // The calls run on another thread: were `notify` to block on the stuck send, the
        // test would see no answer instead of hanging.
        let notifier = Arc::new(notifier);
        let caller = Arc::clone(&notifier);
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            caller.notify(&[NotifyState::Status("a")]);
            for _ in 0..1000 {
                caller.notify(&[NotifyState::Watchdog]);
            }
            caller.notify(&[NotifyState::Status("b")]);
            caller.notify(&[NotifyState::Ready, NotifyState::Status("c")]);
            caller.notify(&[NotifyState::Watchdog]);
            caller.notify(&[NotifyState::Stopping]);
            done_tx.send(()).expect("the test waits");
        });
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("notify returned while the service manager did not read");

        for _ in 0..5 {
            release.send(()).expect("the sender thread lives");
        }
        let got: Vec<Message> = (0..5)
            .map(|_| sent.recv_timeout(Duration::from_secs(30)).expect("sent"))
            .collect();
        let lines = |m: &[&str]| m.iter().map(ToString::to_string).collect::<Message>();
        assert_eq!(
            got,
            vec![
                lines(&["WATCHDOG=1"]),
                lines(&["WATCHDOG=1"]),
                lines(&["STATUS=b"]),
                lines(&["READY=1", "STATUS=c"]),
                lines(&["STOPPING=1"]),
            ]
        );
        notifier.flush(Duration::from_secs(30));
        assert!(notifier.shared.lock().queue.is_empty());
    }

    #[test]
    fn the_newest_status_is_the_last_one_sent() {
        let Manager {
            notifier,
            release,
            sent,
            ..
        } = stuck_on_a_ping();
        notifier.notify(&[NotifyState::Status("a")]);
        notifier.notify(&[NotifyState::Reloading]);
        notifier.notify(&[NotifyState::Ready, NotifyState::Status("b")]);
        notifier.notify(&[NotifyState::Status("c")]);
        for _ in 0..4 {
            release.send(()).expect("the sender thread lives");
        }
        let got: Vec<String> = (0..4)
            .map(|_| {
                sent.recv_timeout(Duration::from_secs(30))
                    .expect("sent")
                    .join("\n")
            })
            .collect();
        assert_eq!(
            got,
            ["WATCHDOG=1", "RELOADING=1", "READY=1\nSTATUS=b", "STATUS=c"]
        );
    }

    #[test]
    fn flush_waits_for_the_last_message_and_gives_up_at_its_limit() {
        let Manager {
            notifier,
            release,
            sent,
            ..
        } = stuck_manager();
        notifier.notify(&[NotifyState::Stopping]);
        // Stuck: flush returns at its limit with the message still unsent.
        notifier.flush(Duration::from_millis(50));
        assert!(sent.try_recv().is_err());
        release.send(()).expect("the sender thread lives");
        notifier.flush(Duration::from_secs(30));
        assert_eq!(
            sent.try_recv().expect("sent before flush returned"),
            vec!["STOPPING=1".to_string()]
        );
    }
}
