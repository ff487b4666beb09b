//! The work queue of a run: pushing targets, the worker's side (reading, taking over the
//! entries of dead workers, storing results, giving entries back), the stored results as
//! `collect` reads them, and the run's status.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use redis::Script;
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamPendingReply, StreamRangeReply, StreamReadReply,
};
use tokio::time::Instant;

use crate::{GROUP, MAX_RECORD_BYTES, QueueError, Store, StoredRecord};
use mxprobe_core::domain::DomainName;

/// Targets sent in one round trip by [`Pusher`].
const PUSH_BATCH: usize = 500;

/// Entries a worker reads at a time (small: an entry read but not started still ages).
const READ_BATCH: usize = 4;

/// How long one read waits for new entries.
const READ_BLOCK: Duration = Duration::from_millis(500);

/// How often a worker looks for entries to take over.
const CLAIM_EVERY: Duration = Duration::from_secs(1);

/// Results read by [`read_results`] at a time.
pub const RESULTS_BATCH: usize = 256;

/// Creates the consumer group (and the stream) unless it exists.
async fn ensure_group(store: &Store) -> Result<(), QueueError> {
    let queue = store.keys().queue();
    store
        .retrying("creating the consumer group", |mut con| {
            let queue = queue.clone();
            async move {
                let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&queue)
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut con)
                    .await;
                match created {
                    Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                    other => other,
                }
            }
        })
        .await
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushStats {
    /// Domains enqueued.
    pub pushed: u64,
    /// Invalid rows stored (reported by `collect` as `scan` reports them).
    pub invalid: u64,
}

/// Enqueues targets in batches (`queue push`).
#[derive(Debug)]
pub struct Pusher {
    store: Store,
    domains: Vec<(usize, DomainName)>,
    invalid: Vec<String>,
    stats: PushStats,
}

impl Pusher {
    /// Starts a push: the group exists and the run is marked as being filled (workers do not
    /// take an empty queue for a drained one until [`Self::finish`]).
    pub async fn begin(store: Store) -> Result<Self, QueueError> {
        ensure_group(&store).await?;
        let meta = store.keys().meta();
        store
            .retrying("marking the push", |mut con| {
                let meta = meta.clone();
                async move {
                    redis::cmd("HSET")
                        .arg(meta)
                        .arg("push-complete")
                        .arg(0)
                        .query_async::<i64>(&mut con)
                        .await
                }
            })
            .await?;
        Ok(Self {
            store,
            domains: Vec::with_capacity(PUSH_BATCH),
            invalid: Vec::new(),
            stats: PushStats::default(),
        })
    }

    /// Enqueues `domain` from input line `line`.
    pub async fn domain(&mut self, line: usize, domain: DomainName) -> Result<(), QueueError> {
        self.domains.push((line, domain));
        if self.domains.len() >= PUSH_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Stores an input row that is not a domain.
    pub async fn invalid(
        &mut self,
        line: usize,
        input: &str,
        error: &str,
    ) -> Result<(), QueueError> {
        let record = StoredRecord::Invalid {
            line,
            input: input.to_owned(),
            error: error.to_owned(),
        };
        let json = serde_json::to_string(&record)
            .map_err(|e| self.store.unexpected("encoding an invalid row", e))?;
        self.invalid.push(json);
        if self.invalid.len() >= PUSH_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), QueueError> {
        if self.domains.is_empty() && self.invalid.is_empty() {
            return Ok(());
        }
        let keys = self.store.keys().clone();
        let (domains, invalid) = (&self.domains, &self.invalid);
        self.store
            .retrying("enqueueing targets", |mut con| {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for (line, domain) in domains {
                    pipe.cmd("XADD")
                        .arg(keys.queue())
                        .arg("*")
                        .arg("line")
                        .arg(*line)
                        .arg("domain")
                        .arg(domain.as_str())
                        .ignore();
                }
                for json in invalid {
                    pipe.cmd("XADD")
                        .arg(keys.results())
                        .arg("*")
                        .arg("kind")
                        .arg("invalid")
                        .arg("data")
                        .arg(json)
                        .ignore();
                }
                pipe.cmd("HINCRBY")
                    .arg(keys.meta())
                    .arg("pushed")
                    .arg(domains.len())
                    .ignore();
                pipe.cmd("HINCRBY")
                    .arg(keys.meta())
                    .arg("invalid")
                    .arg(invalid.len())
                    .ignore();
                async move { pipe.query_async::<()>(&mut con).await }
            })
            .await?;
        self.stats.pushed += self.domains.len() as u64;
        self.stats.invalid += self.invalid.len() as u64;
        self.domains.clear();
        self.invalid.clear();
        Ok(())
    }

    /// Sends what is left and marks the push complete: workers may now take an empty queue
    /// with nothing pending for the end of the run.
    pub async fn finish(mut self) -> Result<PushStats, QueueError> {
        self.flush().await?;
        let meta = self.store.keys().meta();
        self.store
            .retrying("marking the push complete", |mut con| {
                let meta = meta.clone();
                async move {
                    redis::cmd("HSET")
                        .arg(meta)
                        .arg("push-complete")
                        .arg(1)
                        .query_async::<i64>(&mut con)
                        .await
                }
            })
            .await?;
        Ok(self.stats)
    }
}

/// One target taken from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stream entry id.
    pub id: String,
    /// The input line.
    pub line: usize,
    /// The domain.
    pub domain: DomainName,
}

/// How a worker reads the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerOptions {
    /// Entries pending (delivered, not acknowledged) this long are taken over from their
    /// worker, taken for dead (the per-domain deadline plus a grace period).
    pub claim_after: Duration,
    /// Keep waiting for new entries when the queue is drained.
    pub follow: bool,
}

/// Stores a domain's result once and acknowledges its entry, in one step: `KEYS` done,
/// results, queue; `ARGV` domain, JSON, group, entry id. Returns 1 when stored, 0 when the
/// domain was already stored (by an earlier delivery).
const STORE: &str = r"
local stored = 0
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 1 then
  redis.call('XADD', KEYS[2], '*', 'kind', 'domain', 'data', ARGV[2])
  stored = 1
end
redis.call('XACK', KEYS[3], ARGV[3], ARGV[4])
return stored
";

static STORE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(STORE));

/// Gives entries back: `KEYS[1]` queue; `ARGV` group, then (id, line, domain) triples.
/// Each is acknowledged and enqueued again, for any worker to take.
const GIVE_BACK: &str = r"
local n = 0
for i = 2, #ARGV, 3 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], '*', 'line', ARGV[i + 1], 'domain', ARGV[i + 2])
    n = n + 1
  end
end
return n
";

static GIVE_BACK_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(GIVE_BACK));

/// Renews a worker's heartbeat: `KEYS[1]` workers; `ARGV` name, milliseconds to live.
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
return now
";

#[derive(Debug)]
struct ReadState {
    buffer: VecDeque<Entry>,
    cursor: String,
    last_claim: Option<Instant>,
}

/// One worker's view of the queue: what it read, what it holds, its heartbeat.
#[derive(Debug)]
pub struct Worker {
    store: Store,
    consumer: String,
    options: WorkerOptions,
    read: tokio::sync::Mutex<ReadState>,
    /// Entries delivered to this worker and not yet stored or given back.
    held: Mutex<HashMap<String, Entry>>,
    /// Entries dropped because they were not targets (named in notes).
    rejected: std::sync::atomic::AtomicU64,
}

impl Worker {
    /// Joins the run as consumer `consumer` (unique per worker process).
    pub async fn join(
        store: Store,
        consumer: String,
        options: WorkerOptions,
    ) -> Result<Self, QueueError> {
        ensure_group(&store).await?;
        let worker = Self {
            store,
            consumer,
            options,
            read: tokio::sync::Mutex::new(ReadState {
                buffer: VecDeque::new(),
                cursor: "0-0".to_owned(),
                last_claim: None,
            }),
            held: Mutex::new(HashMap::new()),
            rejected: std::sync::atomic::AtomicU64::new(0),
        };
        worker.heartbeat().await?;
        Ok(worker)
    }

    /// This worker's consumer name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The interval between heartbeats: a third of the claim time, at most five seconds.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.options.claim_after / 3).clamp(Duration::from_millis(200), Duration::from_secs(5))
    }

    /// Says this worker is alive, and keeps the entries it holds its own (resets their idle
    /// time, so they are taken over only once this worker stops).
    pub async fn heartbeat(&self) -> Result<(), QueueError> {
        let ttl = self.heartbeat_interval() * 3;
        let workers = self.store.keys().workers();
        let consumer = self.consumer.clone();
        self.store
            .retrying("renewing the heartbeat", |mut con| {
                let (workers, consumer) = (workers.clone(), consumer.clone());
                async move {
                    Script::new(HEARTBEAT)
                        .key(workers)
                        .arg(consumer)
                        .arg(ttl.as_millis() as u64)
                        .invoke_async::<i64>(&mut con)
                        .await
                }
            })
            .await?;
        let held: Vec<String> = self.lock_held().keys().cloned().collect();
        for chunk in held.chunks(100) {
            let queue = self.store.keys().queue();
            let consumer = self.consumer.clone();
            self.store
                .retrying("keeping held entries", |mut con| {
                    let mut cmd = redis::cmd("XCLAIM");
                    cmd.arg(&queue).arg(GROUP).arg(&consumer).arg(0).arg(chunk);
                    cmd.arg("JUSTID");
                    async move { cmd.query_async::<redis::Value>(&mut con).await }
                })
                .await?;
        }
        Ok(())
    }

    /// Leaves the run's list of live workers, and the consumer group when it holds nothing
    /// (a consumer that holds entries stays, for them to be taken over).
    pub async fn leave(&self) -> Result<(), QueueError> {
        let keys = self.store.keys().clone();
        let consumer = self.consumer.clone();
        let holds_nothing = self.lock_held().is_empty();
        self.store
            .retrying("leaving the run", |mut con| {
                let mut pipe = redis::pipe();
                pipe.cmd("ZREM").arg(keys.workers()).arg(&consumer).ignore();
                if holds_nothing {
                    pipe.cmd("XGROUP")
                        .arg("DELCONSUMER")
                        .arg(keys.queue())
                        .arg(GROUP)
                        .arg(&consumer)
                        .ignore();
                }
                async move { pipe.query_async::<()>(&mut con).await }
            })
            .await
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries dropped so far because they were not targets.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The next target: read ahead, new, or taken over from a dead worker. `None` when the
    /// run is drained: the push is complete, nothing is left to read, and nothing is pending
    /// anywhere (every entry is stored and acknowledged). With `follow`, never `None`.
    ///
    /// Every entry delivered to this worker is in [`Self::held`] from the moment Redis
    /// delivers it (the read runs in a task of its own, so a caller that stops waiting loses
    /// nothing) until it is stored or given back.
    pub async fn next(self: &Arc<Self>) -> Result<Option<Entry>, QueueError> {
        let mut read = self.read.lock().await;
        loop {
            if let Some(entry) = read.buffer.pop_front() {
                return Ok(Some(entry));
            }
            if read.last_claim.is_none_or(|t| t.elapsed() >= CLAIM_EVERY) {
                read.last_claim = Some(Instant::now());
                let me = Arc::clone(self);
                let cursor = read.cursor.clone();
                let (claimed, next_cursor) = self
                    .detached(async move {
                        let mut cursor = cursor;
                        let claimed = me.take_over(&mut cursor).await?;
                        me.hold(&claimed);
                        Ok((claimed, cursor))
                    })
                    .await?;
                read.cursor = next_cursor;
                if !claimed.is_empty() {
                    read.buffer.extend(claimed);
                    continue;
                }
            }
            let me = Arc::clone(self);
            let fresh = self
                .detached(async move {
                    let fresh = me.read_new().await?;
                    me.hold(&fresh);
                    Ok(fresh)
                })
                .await?;
            if !fresh.is_empty() {
                read.buffer.extend(fresh);
                continue;
            }
            if !self.options.follow && self.drained().await? {
                return Ok(None);
            }
        }
    }

    /// Runs `work` in a task of its own (it finishes even if the caller stops waiting).
    async fn detached<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, QueueError>> + Send + 'static,
    ) -> Result<T, QueueError> {
        tokio::spawn(work)
            .await
            .map_err(|e| self.store.unexpected("reading the queue", e))?
    }

    fn hold(&self, entries: &[Entry]) {
        let mut held = self.lock_held();
        for e in entries {
            held.insert(e.id.clone(), e.clone());
        }
    }

    /// The entries this worker holds now: delivered to it, not yet stored or given back.
    pub fn held(&self) -> Vec<Entry> {
        self.lock_held().values().cloned().collect()
    }

    async fn read_new(&self) -> Result<Vec<Entry>, QueueError> {
        let queue = self.store.keys().queue();
        let reply: Option<StreamReadReply> = self
            .store
            .retrying("reading the queue", |mut con| {
                let mut cmd = redis::cmd("XREADGROUP");
                cmd.arg("GROUP")
                    .arg(GROUP)
                    .arg(&self.consumer)
                    .arg("COUNT")
                    .arg(READ_BATCH)
                    .arg("BLOCK")
                    .arg(READ_BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&queue)
                    .arg(">");
                async move { cmd.query_async(&mut con).await }
            })
            .await?;
        let ids: Vec<StreamId> = reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default();
        Ok(self.entries(ids).await)
    }

    /// `XAUTOCLAIM`: entries pending longer than the claim time, taken over; counted in the
    /// run's `taken-over`.
    async fn take_over(&self, cursor: &mut String) -> Result<Vec<Entry>, QueueError> {
        let queue = self.store.keys().queue();
        let min_idle = self.options.claim_after.as_millis() as u64;
        let start = cursor.clone();
        let reply: StreamAutoClaimReply = self
            .store
            .retrying("taking over entries of stopped workers", |mut con| {
                let mut cmd = redis::cmd("XAUTOCLAIM");
                cmd.arg(&queue)
                    .arg(GROUP)
                    .arg(&self.consumer)
                    .arg(min_idle)
                    .arg(&start)
                    .arg("COUNT")
                    .arg(READ_BATCH);
                async move { cmd.query_async(&mut con).await }
            })
            .await?;
        *cursor = reply.next_stream_id;
        if !reply.claimed.is_empty() {
            let meta = self.store.keys().meta();
            let n = reply.claimed.len();
            self.store
                .retrying("counting entries taken over", |mut con| {
                    let meta = meta.clone();
                    async move {
                        redis::cmd("HINCRBY")
                            .arg(meta)
                            .arg("taken-over")
                            .arg(n)
                            .query_async::<i64>(&mut con)
                            .await
                    }
                })
                .await?;
        }
        Ok(self.entries(reply.claimed).await)
    }

    /// Checks stream entries; one that is not a target (written by something else than
    /// `queue push`) is acknowledged and dropped with a note.
    async fn entries(&self, ids: Vec<StreamId>) -> Vec<Entry> {
        let mut entries = Vec::with_capacity(ids.len());
        for sid in ids {
            match entry(&sid) {
                Ok(e) => entries.push(e),
                Err(why) => {
                    self.rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    (self.store.notes)(format!(
                        "queue entry {}: {why}; dropped (only `mxprobe queue push` should write \
                         to {})",
                        sid.id,
                        self.store.keys().queue()
                    ));
                    let _ = self.ack(&sid.id).await;
                }
            }
        }
        entries
    }

    async fn ack(&self, id: &str) -> Result<(), QueueError> {
        let queue = self.store.keys().queue();
        self.store
            .retrying("acknowledging an entry", |mut con| {
                let (queue, id) = (queue.clone(), id.to_owned());
                async move {
                    redis::cmd("XACK")
                        .arg(queue)
                        .arg(GROUP)
                        .arg(id)
                        .query_async::<i64>(&mut con)
                        .await
                }
            })
            .await
            .map(|_| ())
    }

    /// Whether the run is drained: the push is complete and no entry is pending or unread.
    async fn drained(&self) -> Result<bool, QueueError> {
        let status = status(&self.store).await?;
        Ok(status.push_complete && status.in_flight == 0 && status.unread == 0)
    }

    /// Stores the result of `entry` (once per domain, whatever the deliveries) and
    /// acknowledges the entry in the same step. Returns whether it was stored now (false:
    /// an earlier delivery stored it).
    pub async fn store(&self, entry: &Entry, record: &StoredRecord) -> Result<bool, QueueError> {
        let json = serde_json::to_string(record)
            .map_err(|e| self.store.unexpected("encoding a result", e))?;
        let keys = self.store.keys().clone();
        let stored: i64 = self
            .store
            .retrying("storing a result", |mut con| {
                let mut invocation = STORE_SCRIPT.prepare_invoke();
                invocation
                    .key(keys.done())
                    .key(keys.results())
                    .key(keys.queue())
                    .arg(entry.domain.as_str())
                    .arg(&json)
                    .arg(GROUP)
                    .arg(&entry.id);
                async move { invocation.invoke_async(&mut con).await }
            })
            .await?;
        self.lock_held().remove(&entry.id);
        Ok(stored == 1)
    }

    /// Gives `entries` back to the queue for any worker to take (at shutdown): each is
    /// acknowledged and enqueued again in one step.
    pub async fn give_back(&self, entries: &[Entry]) -> Result<u64, QueueError> {
        let mut given = 0;
        for chunk in entries.chunks(100) {
            let queue = self.store.keys().queue();
            let n: i64 = self
                .store
                .retrying("giving entries back", |mut con| {
                    let mut invocation = GIVE_BACK_SCRIPT.prepare_invoke();
                    invocation.key(&queue).arg(GROUP);
                    for e in chunk {
                        invocation.arg(&e.id).arg(e.line).arg(e.domain.as_str());
                    }
                    async move { invocation.invoke_async(&mut con).await }
                })
                .await?;
            given += n.unsigned_abs();
            let mut held = self.lock_held();
            for e in chunk {
                held.remove(&e.id);
            }
        }
        Ok(given)
    }
}

/// The target in a stream entry.
fn entry(sid: &StreamId) -> Result<Entry, String> {
    let field = |name: &str| -> Result<String, String> {
        match sid.map.get(name) {
            Some(redis::Value::BulkString(bytes)) if bytes.len() <= 1024 => {
                String::from_utf8(bytes.clone()).map_err(|_| format!("field {name} is not UTF-8"))
            }
            Some(redis::Value::BulkString(_)) => Err(format!("field {name} is too long")),
            Some(_) => Err(format!("field {name} is not a string")),
            None => Err(format!("no field {name}")),
        }
    };
    let line = field("line")?
        .parse::<usize>()
        .map_err(|_| "field line is not a line number".to_owned())?;
    let text = field("domain")?;
    let domain = DomainName::parse(&text).map_err(|e| format!("field domain: {e}"))?;
    Ok(Entry {
        id: sid.id.clone(),
        line,
        domain,
    })
}

/// One record read back from the results stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// Its id in the results stream.
    pub id: String,
    /// The record, or why it cannot be read.
    pub record: Result<StoredRecord, String>,
}

/// Up to `count` records of the results stream after id `after` (`"-"`: from the start),
/// in order. Each record appears once in the stream, so reading it through gives each
/// domain once.
pub async fn read_results(
    store: &Store,
    after: &str,
    count: usize,
) -> Result<Vec<ReadRecord>, QueueError> {
    let results = store.keys().results();
    let start = if after == "-" {
        "-".to_owned()
    } else {
        format!("({after}")
    };
    let reply: StreamRangeReply = store
        .retrying("reading the results", |mut con| {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(&results)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(count);
            async move { cmd.query_async(&mut con).await }
        })
        .await?;
    Ok(reply
        .ids
        .into_iter()
        .map(|sid| ReadRecord {
            record: record(&sid),
            id: sid.id,
        })
        .collect())
}

fn record(sid: &StreamId) -> Result<StoredRecord, String> {
    match sid.map.get("data") {
        Some(redis::Value::BulkString(bytes)) if bytes.len() <= MAX_RECORD_BYTES => {
            serde_json::from_slice(bytes).map_err(|e| format!("not a stored result: {e}"))
        }
        Some(redis::Value::BulkString(bytes)) => Err(format!(
            "{} bytes, more than the {} a result may have",
            bytes.len(),
            MAX_RECORD_BYTES
        )),
        _ => Err("no data field".to_owned()),
    }
}

/// A live worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWorker {
    /// Its consumer name.
    pub name: String,
    /// Entries it holds.
    pub holding: u64,
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunStatus {
    /// Domains pushed.
    pub pushed: u64,
    /// Invalid rows pushed.
    pub invalid: u64,
    /// The last push is complete.
    pub push_complete: bool,
    /// Entries not yet read by any worker.
    pub unread: u64,
    /// Entries delivered to a worker and not yet acknowledged.
    pub in_flight: u64,
    /// Domains stored.
    pub done: u64,
    /// Entries taken over from workers that stopped.
    pub taken_over: u64,
    /// Workers whose heartbeat is current, by name.
    pub workers: Vec<LiveWorker>,
}

/// The replies of the status pipeline: meta, done, pending, unread, workers, time.
type StatusReplies = (
    HashMap<String, String>,
    u64,
    StreamPendingReply,
    u64,
    Vec<(String, f64)>,
    (u64, u64),
);

/// The status of the run of `store`.
pub async fn status(store: &Store) -> Result<RunStatus, QueueError> {
    let keys = store.keys().clone();
    let exists: i64 = store
        .retrying("looking for the run", |mut con| {
            let queue = keys.queue();
            async move { redis::cmd("EXISTS").arg(queue).query_async(&mut con).await }
        })
        .await?;
    if exists == 0 {
        return Err(QueueError::NoRun {
            run: keys.name().to_owned(),
            url: store.url().redacted(),
        });
    }
    let (meta, done, pending, unread, workers, now): StatusReplies = store
        .retrying("reading the run's status", |mut con| {
            let mut pipe = redis::pipe();
            pipe.cmd("HGETALL").arg(keys.meta());
            pipe.cmd("HLEN").arg(keys.done());
            pipe.cmd("XPENDING").arg(keys.queue()).arg(GROUP);
            pipe.cmd("EVAL")
                .arg(UNREAD)
                .arg(1)
                .arg(keys.queue())
                .arg(GROUP)
                .arg(UNREAD_COUNT_CAP);
            pipe.cmd("ZRANGE")
                .arg(keys.workers())
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES");
            pipe.cmd("TIME");
            async move { pipe.query_async(&mut con).await }
        })
        .await?;
    let number = |name: &str| {
        meta.get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let now_ms = now.0 * 1000 + now.1 / 1000;
    let holding: HashMap<String, u64> = match &pending {
        StreamPendingReply::Data(data) => data
            .consumers
            .iter()
            .map(|c| (c.name.clone(), c.pending as u64))
            .collect(),
        _ => HashMap::new(),
    };
    let live = workers
        .into_iter()
        .filter(|(_, expires)| *expires >= now_ms as f64)
        .map(|(name, _)| LiveWorker {
            holding: holding.get(&name).copied().unwrap_or(0),
            name,
        })
        .collect();
    Ok(RunStatus {
        pushed: number("pushed"),
        invalid: number("invalid"),
        push_complete: number("push-complete") == 1,
        unread,
        in_flight: pending.count() as u64,
        done,
        taken_over: number("taken-over"),
        workers: live,
    })
}

/// Where Redis (before 7) gives no `lag`, unread entries are counted up to this many.
pub const UNREAD_COUNT_CAP: u64 = 100_000;

/// The entries of `KEYS[1]` after the last id delivered to group `ARGV[1]`: the group's
/// `lag` (Redis 7 and later), else counted, at most `ARGV[2]`.
const UNREAD: &str = r"
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local last, lag = nil, nil
for _, g in ipairs(groups) do
  local fields = {}
  for i = 1, #g, 2 do fields[g[i]] = g[i + 1] end
  if fields['name'] == ARGV[1] then
    last = fields['last-delivered-id']
    lag = fields['lag']
  end
end
if last == nil then return 0 end
if type(lag) == 'number' then return lag end
local cap = tonumber(ARGV[2])
local n = 0
local cursor = '(' .. last
while n < cap do
  local batch = redis.call('XRANGE', KEYS[1], cursor, '+', 'COUNT', 1000)
  n = n + #batch
  if #batch < 1000 then return n end
  cursor = '(' .. batch[#batch][1]
end
return n
";
