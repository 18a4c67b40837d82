//! What the stream service takes per record: the adapter's reading of it through the layout
//! ([`Read`]: a change, a plain touch already decided, or not a session) or its rejection
//! ([`Rejected`], dead-lettered with its input); and [`reading`], which adapts a parser of
//! borrowed records to that.

use crate::change::{Change, Malformed};

/// A stream record as the batch holds it: parsed JSON, or its raw text (the worker's, so that no
/// tree is built for a record that parses cleanly). A dead letter carries it as JSON.
pub trait Record: Sync {
    /// The record as JSON, for its dead letter.
    fn json(&self) -> serde_json::Value;
}

impl Record for serde_json::Value {
    fn json(&self) -> serde_json::Value {
        self.clone()
    }
}

impl Record for Box<serde_json::value::RawValue> {
    /// Text that is not JSON (Lambda never sends it) travels as a JSON string.
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.get())
            .unwrap_or_else(|_| serde_json::Value::String(self.get().to_string()))
    }
}

/// One record as the worker read it through the layout.
#[derive(Debug)]
pub enum Read {
    /// A change for the rules.
    Change(Box<Change>),
    /// A MODIFY that the rules have already decided asks for nothing
    /// ([`crate::anomaly::is_plain_touch`], on a layout with no index of its own): processed, with
    /// no change built.
    Quiet,
    /// An item that is not a session under the layout: skipped and counted, never dead-lettered.
    NotSession,
}

/// A record that cannot be read: dead-lettered with its input, so nothing is lost.
#[derive(Debug)]
pub struct Rejected {
    /// Why, and the sequence number when there is one.
    pub malformed: Malformed,
    /// The record, exactly as received.
    pub raw: serde_json::Value,
}

/// Adapts a reader of borrowed records (`Ok(None)`: not a session) to what
/// [`super::process_batch`] takes; a rejected record carries its own JSON ([`Record::json`]).
pub fn reading<R: Record>(
    parse: impl Fn(&R) -> Result<Option<Change>, Malformed>,
) -> impl FnMut(R) -> Result<Read, Rejected> {
    move |r| match parse(&r) {
        Ok(Some(c)) => Ok(Read::Change(Box::new(c))),
        Ok(None) => Ok(Read::NotSession),
        Err(malformed) => Err(Rejected {
            malformed,
            raw: r.json(),
        }),
    }
}
