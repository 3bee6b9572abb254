//! PostgreSQL's own bulk load of the data citydb serves, the peer of `citydb import` (issue 12,
//! item 5): the read-model tables of an imported city — `records` (each record's state as
//! `jsonb`), `citizens`, `businesses`, `parcels`, `parcel_land_use`, `holdings`,
//! `representatives` — loaded with `COPY` into a throwaway cluster (the test kit's: `fsync` and
//! `synchronous_commit` on), then their primary keys and the same secondary indexes citydb's
//! projections have (`crates/projections/src/schema.rs`), name indexes as B-trees.
//!
//! Run after an import, on its projections file:
//! `CITYDB_PG_COPY_FROM=DIR/projections.db cargo bench --bench pg_copy`
//!
//! The tables are first written as files in COPY's text format (timed apart: that is the
//! source registers' export, not the load); the load is `psql`'s `\copy` of each file, one
//! table after the other, then `ALTER TABLE … ADD PRIMARY KEY` and `CREATE INDEX`
//! (`maintenance_work_mem` 1 GB, as a DBA would set for a load), then `ANALYZE`. Figures:
//! docs/benchmarks.md, "The whole city".

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use citydb_postgres::testkit::TestCluster;
use rusqlite::types::ValueRef;

/// One table: its name, PostgreSQL columns, the SQLite query that yields them in that order,
/// its primary key, and the indexes created after the load.
struct Table {
    name: &'static str,
    columns: &'static str,
    select: &'static str,
    key: &'static str,
    indexes: &'static [&'static str],
}

const TABLES: &[Table] = &[
    Table {
        name: "records",
        columns: "seq bigint NOT NULL, record_id text NOT NULL, kind text NOT NULL, \
                  version bigint NOT NULL, last_position bigint NOT NULL, state jsonb NOT NULL",
        select: "SELECT seq, record_id, kind, version, last_position, state FROM records",
        key: "seq",
        indexes: &["CREATE UNIQUE INDEX records_record_id ON records(record_id)"],
    },
    Table {
        name: "citizens",
        columns: "seq bigint NOT NULL, pin text NOT NULL, name_exact text NOT NULL, \
                  name_folded text NOT NULL, commune text, birth_year integer NOT NULL, \
                  status text NOT NULL, merged_into text",
        select: "SELECT seq, pin, name_exact, name_folded, commune, birth_year, status, \
                 merged_into FROM citizens",
        key: "seq",
        indexes: &[
            "CREATE INDEX citizens_pin ON citizens(pin)",
            "CREATE INDEX citizens_commune ON citizens(commune, seq)",
            "CREATE INDEX citizens_status ON citizens(status, seq)",
            "CREATE INDEX citizens_birth_year ON citizens(birth_year, seq)",
            "CREATE INDEX citizens_merged_into ON citizens(merged_into) \
             WHERE merged_into IS NOT NULL",
            "CREATE INDEX citizens_name_folded ON citizens(name_folded text_pattern_ops, seq)",
            "CREATE INDEX citizens_name_exact ON citizens(name_exact text_pattern_ops, seq)",
        ],
    },
    Table {
        name: "businesses",
        columns: "seq bigint NOT NULL, code text NOT NULL, name text NOT NULL, \
                  name_exact text NOT NULL, name_folded text NOT NULL, commune text NOT NULL, \
                  status text NOT NULL, parent text",
        select: "SELECT seq, code, name, name_exact, name_folded, commune, status, parent \
                 FROM businesses",
        key: "seq",
        indexes: &[
            "CREATE INDEX businesses_code ON businesses(code)",
            "CREATE INDEX businesses_commune ON businesses(commune, seq)",
            "CREATE INDEX businesses_status ON businesses(status, seq)",
            "CREATE INDEX businesses_parent ON businesses(parent) WHERE parent IS NOT NULL",
            "CREATE INDEX businesses_name_folded ON businesses(name_folded text_pattern_ops, seq)",
            "CREATE INDEX businesses_name_exact ON businesses(name_exact text_pattern_ops, seq)",
        ],
    },
    Table {
        name: "parcels",
        columns: "seq bigint NOT NULL, parcel_key text NOT NULL, commune text NOT NULL, \
                  status text NOT NULL, merged_into text",
        select: "SELECT seq, parcel_key, commune, status, merged_into FROM parcels",
        key: "seq",
        indexes: &[
            "CREATE INDEX parcels_key ON parcels(parcel_key)",
            "CREATE INDEX parcels_commune ON parcels(commune, seq)",
            "CREATE INDEX parcels_status ON parcels(status, seq)",
        ],
    },
    Table {
        name: "parcel_land_use",
        columns: "seq bigint NOT NULL, land_use text NOT NULL",
        select: "SELECT seq, land_use FROM parcel_land_use",
        key: "seq, land_use",
        indexes: &["CREATE INDEX parcel_land_use_code ON parcel_land_use(land_use, seq)"],
    },
    Table {
        name: "holdings",
        columns: "parcel_id text NOT NULL, holder_id text NOT NULL, share text NOT NULL, \
                  ord integer NOT NULL",
        select: "SELECT parcel_id, holder_id, share, ord FROM holdings",
        key: "parcel_id, holder_id",
        indexes: &["CREATE INDEX holdings_holder ON holdings(holder_id, parcel_id)"],
    },
    Table {
        name: "representatives",
        columns: "business_id text NOT NULL, citizen_id text NOT NULL, ord integer NOT NULL",
        select: "SELECT business_id, citizen_id, ord FROM representatives",
        key: "business_id, citizen_id",
        indexes: &[
            "CREATE INDEX representatives_citizen ON representatives(citizen_id, business_id)",
        ],
    },
];

fn main() {
    let Some(source) = std::env::var_os("CITYDB_PG_COPY_FROM") else {
        eprintln!(
            "pg_copy: set CITYDB_PG_COPY_FROM to an imported city's projections.db \
             (e.g. CITYDB_PG_COPY_FROM=d/projections.db cargo bench --bench pg_copy)"
        );
        return;
    };
    let source = PathBuf::from(source);
    let psql = find_psql();
    let work = tempfile::Builder::new()
        .prefix("citydb-pg-copy-")
        .tempdir()
        .expect("temporary directory");

    println!("pg_copy: exporting the read models of {}", source.display());
    let export_started = Instant::now();
    let mut rows = Vec::new();
    let mut bytes = 0;
    for table in TABLES {
        let path = work.path().join(format!("{}.copy", table.name));
        let (n, b) = export(&source, table, &path);
        rows.push(n);
        bytes += b;
    }
    let export_time = export_started.elapsed();
    let total_rows: u64 = rows.iter().sum();
    println!(
        "pg_copy: {total_rows} rows, {} MB in COPY text format, exported in {:.1} s",
        bytes / 1_000_000,
        export_time.as_secs_f64()
    );

    let cluster = TestCluster::start().expect("start a throwaway PostgreSQL cluster");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = runtime
        .block_on(cluster.create_database())
        .expect("create the database");
    // `\copy` reads the files on the client side (this process's user), not as the server.
    let mut schema = String::new();
    for table in TABLES {
        let _ = writeln!(schema, "CREATE TABLE {} ({});", table.name, table.columns);
    }
    run_sql(&psql, &url, &schema);

    let started = Instant::now();
    let mut phases: Vec<(String, Duration)> = Vec::new();
    for (table, n) in TABLES.iter().zip(&rows) {
        let path = work.path().join(format!("{}.copy", table.name));
        let t = Instant::now();
        run_sql(
            &psql,
            &url,
            &format!("\\copy {} FROM '{}'", table.name, path.display()),
        );
        phases.push((format!("COPY {} ({n} rows)", table.name), t.elapsed()));
    }
    let copy_time = started.elapsed();
    let t = Instant::now();
    let mut keys = String::from("SET maintenance_work_mem = '1GB';\n");
    for table in TABLES {
        let _ = writeln!(
            keys,
            "ALTER TABLE {} ADD PRIMARY KEY ({});",
            table.name, table.key
        );
    }
    run_sql(&psql, &url, &keys);
    phases.push(("primary keys".into(), t.elapsed()));
    let t = Instant::now();
    let mut indexes = String::from("SET maintenance_work_mem = '1GB';\n");
    for table in TABLES {
        for index in table.indexes {
            let _ = writeln!(indexes, "{index};");
        }
    }
    run_sql(&psql, &url, &indexes);
    phases.push(("secondary indexes".into(), t.elapsed()));
    let t = Instant::now();
    run_sql(&psql, &url, "ANALYZE;");
    phases.push(("ANALYZE".into(), t.elapsed()));
    let total = started.elapsed();
    let size = run_sql(
        &psql,
        &url,
        "SELECT pg_database_size(current_database()) / 1000000",
    );

    println!("\n| PostgreSQL COPY load | wall time |");
    println!("| --- | --- |");
    for (phase, time) in &phases {
        println!("| {phase} | {:.1} s |", time.as_secs_f64());
    }
    println!(
        "| **total** ({total_rows} rows; COPY alone {:.1} s) | **{:.1} s** |",
        copy_time.as_secs_f64(),
        total.as_secs_f64()
    );
    println!("database size: {} MB", size.trim());
    cluster.stop();
}

/// Writes `table`'s rows to `path` in COPY's text format; returns (rows, bytes).
fn export(source: &Path, table: &Table, path: &Path) -> (u64, u64) {
    let conn = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the projections file");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create file"));
    let mut statement = conn.prepare(table.select).expect("prepare the export");
    let columns = statement.column_count();
    let mut rows = statement.query([]).expect("query");
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut line = Vec::with_capacity(4096);
    while let Some(row) = rows.next().expect("read a row") {
        line.clear();
        for i in 0..columns {
            if i > 0 {
                line.push(b'\t');
            }
            match row.get_ref(i).expect("column") {
                ValueRef::Null => line.extend_from_slice(b"\\N"),
                ValueRef::Integer(v) => line.extend_from_slice(v.to_string().as_bytes()),
                ValueRef::Real(v) => line.extend_from_slice(v.to_string().as_bytes()),
                ValueRef::Text(t) | ValueRef::Blob(t) => escape(t, &mut line),
            }
        }
        line.push(b'\n');
        out.write_all(&line).expect("write");
        n += 1;
        bytes += line.len() as u64;
    }
    out.flush().expect("flush");
    (n, bytes)
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn escape(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// Runs `sql` with psql (stop at the first error); returns its unaligned output.
fn run_sql(psql: &Path, url: &str, sql: &str) -> String {
    let output = Command::new(psql)
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql failed on {sql:.200}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `psql` on PATH, else the newest /usr/lib/postgresql/*/bin/psql.
fn find_psql() -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("psql");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/psql")))
        .filter(|p| p.is_file())
        .collect();
    versions.sort();
    versions.pop().expect("psql in /usr/lib/postgresql/*/bin")
}
