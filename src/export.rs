//! `citydb export`: the whole log as NDJSON, one event per line with every field the hash chain
//! covers, streamed in batches (memory stays bounded whatever the log's size). The format is
//! specified in `docs/audit-format.md`, "Export format"; [`parse_line`] reads both flavours
//! back for `citydb verify --file`.
//!
//! Every export opens with a header line ([`write_header`]) stating the hash format of its
//! events; an export without one (written before citydb stated it) is format 1.
//!
//! - `ndjson` (default): `data` and `metadata` are JSON *strings* holding the exact stored
//!   bytes (JSON string escaping is lossless for UTF-8 text), so a verifier hashes the decoded
//!   string's UTF-8 bytes and never re-serialises JSON. `data` is `null` once redacted.
//! - `cloudevents`: CloudEvents 1.0 structured JSON, one event per line; `data` is the stored
//!   JSON embedded verbatim (byte for byte, so it can be hashed from the line), or `data_base64`
//!   when the bytes could not be embedded verbatim on one line; the chain fields are extension
//!   attributes `citydb…` (integers as strings: CloudEvents integers are 32-bit).

use std::io::Write;
use std::sync::Arc;

use anyhow::Context as _;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use citydb_log::chain::{Envelope, EventView};
use citydb_log::{EventLog, Hash, LogHead, READ_BATCH, RecordedEvent};

/// The export flavours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per event with the chain's fields under their own names.
    Ndjson,
    /// CloudEvents 1.0 (structured JSON), the chain fields as `citydb…` extension attributes.
    Cloudevents,
}

/// One event of an `ndjson` export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEvent {
    pub position: u64,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    /// Microseconds since the Unix epoch.
    pub recorded_at: i64,
    /// The stored payload bytes as a string; `None` once redacted.
    pub data: Option<String>,
    /// The stored metadata bytes as a string.
    pub metadata: String,
    pub data_hash: Hash,
    pub prev_stream_hash: Hash,
    pub prev_log_hash: Hash,
    pub hash: Hash,
}

impl ExportedEvent {
    /// The event as the verifier sees it.
    pub fn view(&self) -> EventView<'_> {
        EventView {
            envelope: Envelope {
                position: self.position,
                stream_id: &self.stream_id,
                stream_version: self.stream_version,
                event_id: self.event_id,
                event_type: &self.event_type,
                schema_version: self.schema_version,
                recorded_at: self.recorded_at,
                metadata: self.metadata.as_bytes(),
            },
            data: self.data.as_deref().map(str::as_bytes),
            data_hash: self.data_hash,
            prev_stream_hash: self.prev_stream_hash,
            prev_log_hash: self.prev_log_hash,
            hash: self.hash,
        }
    }
}

fn text(bytes: Vec<u8>, what: &str, position: u64) -> anyhow::Result<String> {
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the {what} of position {position} is not UTF-8 text"))
}

fn to_exported(event: RecordedEvent) -> anyhow::Result<ExportedEvent> {
    let position = event.position;
    let data = if event.data.is_empty() {
        None
    } else {
        Some(text(event.data, "data", position)?)
    };
    Ok(ExportedEvent {
        position,
        stream_id: event.stream_id.as_str().to_owned(),
        stream_version: event.stream_version,
        event_id: event.event_id,
        event_type: event.event_type,
        schema_version: event.schema_version,
        recorded_at: event.recorded_at,
        data,
        metadata: text(event.metadata, "metadata", position)?,
        data_hash: event.data_hash,
        prev_stream_hash: event.prev_stream_hash,
        prev_log_hash: event.prev_log_hash,
        hash: event.hash,
    })
}

/// The `source` attribute of exported CloudEvents.
pub const CLOUDEVENTS_SOURCE: &str = "urn:citydb:log";

/// One event of a `cloudevents` export, as read back.
#[derive(Debug, Deserialize)]
struct CloudEvent<'a> {
    specversion: String,
    id: Uuid,
    #[serde(rename = "type")]
    kind: String,
    subject: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    data_base64: Option<String>,
    #[serde(default)]
    citydbredacted: bool,
    citydbposition: String,
    citydbstreamversion: String,
    citydbschemaversion: String,
    citydbrecordedat: String,
    citydbmetadata: String,
    citydbdatahash: Hash,
    citydbprevstreamhash: Hash,
    citydbprevloghash: Hash,
    citydbhash: Hash,
}

fn write_cloudevent(out: &mut impl Write, e: &ExportedEvent) -> anyhow::Result<()> {
    let s = |v: &str| serde_json::to_string(v);
    write!(
        out,
        "{{\"specversion\":\"1.0\",\"id\":\"{}\",\"source\":{},\"type\":{},\"time\":\"{}\",\"subject\":{},\"datacontenttype\":\"application/json\"",
        e.event_id,
        s(CLOUDEVENTS_SOURCE)?,
        s(&e.event_type)?,
        rfc3339_micros(e.recorded_at),
        s(&e.stream_id)?,
    )?;
    write!(
        out,
        ",\"citydbposition\":\"{}\",\"citydbstreamversion\":\"{}\",\"citydbschemaversion\":\"{}\",\"citydbrecordedat\":\"{}\",\"citydbmetadata\":{}",
        e.position,
        e.stream_version,
        e.schema_version,
        e.recorded_at,
        s(&e.metadata)?,
    )?;
    write!(
        out,
        ",\"citydbdatahash\":\"{}\",\"citydbprevstreamhash\":\"{}\",\"citydbprevloghash\":\"{}\",\"citydbhash\":\"{}\"",
        e.data_hash, e.prev_stream_hash, e.prev_log_hash, e.hash
    )?;
    match &e.data {
        None => write!(out, ",\"citydbredacted\":true")?,
        // Verbatim only when a JSON reader gives back exactly these bytes: valid JSON, on one
        // line, with no surrounding whitespace.
        Some(data)
            if !data.contains(['\n', '\r'])
                && data.trim() == data
                && serde_json::from_str::<&RawValue>(data).is_ok() =>
        {
            write!(out, ",\"data\":{data}")?;
        }
        Some(data) => write!(
            out,
            ",\"data_base64\":\"{}\"",
            base64_encode(data.as_bytes())
        )?,
    }
    writeln!(out, "}}")?;
    Ok(())
}

/// The `header` member's value that marks an export's header line.
pub const HEADER_MARK: &str = "citydb-export";

/// The header line of an export: `{"header":"citydb-export","hash_format":1,…}`. Readers
/// know it by its `header` member and take only `hash_format`; the other members describe the
/// export and may grow.
#[derive(Debug, Serialize)]
struct Header<'a> {
    header: &'a str,
    hash_format: u8,
    /// `events` or `access_log`.
    log: &'a str,
    /// `ndjson` or `cloudevents`.
    flavour: &'a str,
}

/// Writes the header line that opens an export.
pub fn write_header(out: &mut impl Write, format: Format, access_log: bool) -> anyhow::Result<()> {
    let header = Header {
        header: HEADER_MARK,
        hash_format: citydb_log::chain::FORMAT_VERSION,
        log: if access_log { "access_log" } else { "events" },
        flavour: match format {
            Format::Ndjson => "ndjson",
            Format::Cloudevents => "cloudevents",
        },
    };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The hash format a header line states: `None` when `line` is not a header (an event: the
/// export has no header), `Err` for a header that does not say which format.
pub fn parse_header(line: &[u8]) -> Option<anyhow::Result<u64>> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line).ok()?;
    let mark = object.get("header")?;
    Some(if mark.as_str() != Some(HEADER_MARK) {
        Err(anyhow::anyhow!("the header is not {HEADER_MARK:?}"))
    } else {
        object
            .get("hash_format")
            .and_then(serde_json::Value::as_u64)
            .context("the header states no hash_format (a whole number)")
    })
}

/// Reads one line of either flavour.
pub fn parse_line(line: &[u8]) -> anyhow::Result<ExportedEvent> {
    let probe: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(line).context("not a JSON object")?;
    if !probe.contains_key("specversion") {
        return serde_json::from_slice(line).context("not an exported event");
    }
    let ce: CloudEvent<'_> = serde_json::from_slice(line).context("not an exported CloudEvent")?;
    if ce.specversion != "1.0" {
        anyhow::bail!("CloudEvents specversion {} is not 1.0", ce.specversion);
    }
    let data = match (ce.citydbredacted, ce.data, ce.data_base64) {
        (true, None, None) => None,
        (false, Some(raw), None) => Some(raw.get().to_owned()),
        (false, None, Some(b64)) => Some(
            String::from_utf8(base64_decode(&b64).context("data_base64 is not base64")?)
                .context("data_base64 is not UTF-8 text")?,
        ),
        _ => anyhow::bail!("exactly one of data, data_base64 and citydbredacted must be given"),
    };
    let int = |v: &str, what: &str| -> anyhow::Result<i128> {
        v.parse::<i128>()
            .with_context(|| format!("{what} is not an integer"))
    };
    Ok(ExportedEvent {
        position: u64::try_from(int(&ce.citydbposition, "citydbposition")?)?,
        stream_id: ce.subject,
        stream_version: u64::try_from(int(&ce.citydbstreamversion, "citydbstreamversion")?)?,
        event_id: ce.id,
        event_type: ce.kind,
        schema_version: u32::try_from(int(&ce.citydbschemaversion, "citydbschemaversion")?)?,
        recorded_at: i64::try_from(int(&ce.citydbrecordedat, "citydbrecordedat")?)?,
        data,
        metadata: ce.citydbmetadata,
        data_hash: ce.citydbdatahash,
        prev_stream_hash: ce.citydbprevstreamhash,
        prev_log_hash: ce.citydbprevloghash,
        hash: ce.citydbhash,
    })
}

/// What an export wrote.
pub struct ExportSummary {
    pub events: u64,
    pub head: Option<LogHead>,
}

/// Streams every event up to the head as it was when the export started (so a log that
/// grows meanwhile still gives one consistent prefix).
pub async fn export(
    log: Arc<dyn EventLog>,
    out: &mut impl Write,
    format: Format,
    progress: &ProgressBar,
) -> anyhow::Result<ExportSummary> {
    let Some(head) = log.head().await? else {
        return Ok(ExportSummary {
            events: 0,
            head: None,
        });
    };
    progress.set_length(head.position + 1);
    let mut from = 0;
    let mut events = 0;
    let mut last: Option<LogHead> = None;
    'read: while from <= head.position {
        let batch = log.read_all(from, READ_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for event in batch {
            if event.position > head.position {
                break 'read;
            }
            from = event.position + 1;
            let exported = to_exported(event)?;
            match format {
                Format::Ndjson => {
                    serde_json::to_writer(&mut *out, &exported)?;
                    out.write_all(b"\n")?;
                }
                Format::Cloudevents => write_cloudevent(out, &exported)?,
            }
            last = Some(LogHead {
                position: exported.position,
                hash: exported.hash,
            });
            events += 1;
        }
        progress.set_position(from);
    }
    out.flush()?;
    Ok(ExportSummary { events, head: last })
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for microseconds since the epoch (proleptic Gregorian, UTC).
pub fn rfc3339_micros(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(1_764_201_600_000_250),
            "2025-11-27T00:00:00.000250Z"
        );
        assert_eq!(rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            rfc3339_micros(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn base64_round_trips() {
        for input in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "{\"a\":\n1}",
        ] {
            let encoded = base64_encode(input.as_bytes());
            assert_eq!(base64_decode(&encoded).as_deref(), Some(input.as_bytes()));
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    fn sample(data: Option<&str>) -> ExportedEvent {
        ExportedEvent {
            position: 7,
            stream_id: "citizen-0193e3a4-7c1b-7d2e-8f00-000000000001".into(),
            stream_version: 2,
            event_id: Uuid::from_u128(0x0193e3a4_7c1b_7d2e_8f00_0000000000e1),
            event_type: "CitizenRegistered".into(),
            schema_version: 1,
            recorded_at: 1_764_201_600_000_250,
            data: data.map(str::to_owned),
            metadata: "{\"actor\":\"steward-1\"}".into(),
            data_hash: Hash([1; 32]),
            prev_stream_hash: Hash([2; 32]),
            prev_log_hash: Hash([3; 32]),
            hash: Hash([4; 32]),
        }
    }

    #[test]
    fn the_header_states_the_hash_format_and_is_no_event() {
        for (format, access_log) in [(Format::Ndjson, false), (Format::Cloudevents, true)] {
            let mut line = Vec::new();
            write_header(&mut line, format, access_log).unwrap();
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(
                parse_header(&line).map(Result::ok),
                Some(Some(u64::from(citydb_log::chain::FORMAT_VERSION)))
            );
            assert!(parse_line(&line).is_err(), "a header is not an event");
        }
        let event = serde_json::to_vec(&sample(Some("{}"))).unwrap();
        assert!(parse_header(&event).is_none());
        assert!(parse_header(b"{\"header\":\"citydb-export\"}").is_some_and(|r| r.is_err()));
        assert!(
            parse_header(b"{\"header\":\"other\",\"hash_format\":1}").is_some_and(|r| r.is_err())
        );
    }

    #[test]
    fn both_flavours_read_back_byte_exact() {
        for data in [
            Some("{\"family\":\"Nguyễn\",  \"n\":1.50}"),
            Some(" {\"spaced\":true}"),
            Some("{\"multi\":\n1}"),
            None,
        ] {
            let e = sample(data);
            let mut line = serde_json::to_vec(&e).unwrap();
            line.push(b'\n');
            assert_eq!(parse_line(&line).unwrap(), e);
            let mut ce = Vec::new();
            write_cloudevent(&mut ce, &e).unwrap();
            assert_eq!(ce.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(
                parse_line(&ce).unwrap(),
                e,
                "{}",
                String::from_utf8_lossy(&ce)
            );
        }
    }
}
