//! Test helpers shared by the unit tests: capturing tracing events.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// One event as a test sees it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub target: String,
    pub level: Level,
    pub fields: Vec<(String, String)>,
}

impl Captured {
    /// The value of `name`, as text.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
}

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            target: event.metadata().target().to_string(),
            level: *event.metadata().level(),
            fields,
        });
    }
}

/// Runs `f` with a subscriber that records every event on this thread, and returns them.
pub fn capture(f: impl FnOnce()) -> Vec<Captured> {
    capture_where(|_| true, f)
}

/// Like [`capture`], recording only the events whose metadata `filter` admits (a per-layer
/// filter, as the journald layers use).
pub fn capture_where(
    filter: impl Fn(&tracing::Metadata<'_>) -> bool + Send + Sync + 'static,
    f: impl FnOnce(),
) -> Vec<Captured> {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(
        recorder
            .clone()
            .with_filter(tracing_subscriber::filter::filter_fn(filter)),
    );
    tracing::subscriber::with_default(subscriber, f);
    recorder.0.lock().unwrap().clone()
}
