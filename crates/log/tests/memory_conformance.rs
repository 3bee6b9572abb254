//! The log's conformance suite against the in-memory store, with tamper hooks that edit its
//! events directly.

use std::sync::Arc;

use async_trait::async_trait;

use citydb_log::conformance::{Backend, Tamper};
use citydb_log::conformance_tests;
use citydb_log::memory::MemoryLog;

/// Two logs, kept here so that "reopening" one after its handles are dropped finds it again.
struct MemoryBackend {
    log: MemoryLog,
    second: MemoryLog,
}

async fn memory_backend() -> MemoryBackend {
    MemoryBackend {
        log: MemoryLog::new(),
        second: MemoryLog::new(),
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    type Log = MemoryLog;

    async fn open(&self) -> Arc<MemoryLog> {
        Arc::new(self.log.clone())
    }

    async fn open_second(&self) -> Arc<MemoryLog> {
        Arc::new(self.second.clone())
    }

    async fn tamper(&self, tamper: Tamper) {
        self.log.tamper(tamper);
    }
}

conformance_tests!(memory_backend);
