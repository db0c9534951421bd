//! Behaviour bans: a decaying score per client network, fed by offences, that leads to
//! temporary bans checked at accept.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use ipnet::IpNet;
use tokio::sync::mpsc;

use crate::LimitError;
use crate::clock::{Clock, SystemClock};
use crate::key::ClientNet;
use crate::store::{StoreConn, StoreOptions, StoreUrl};

/// Something a client did that counts against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offence {
    /// It was answered 429.
    RateLimited,
    /// It was answered 401 (bad credentials, bad token).
    AuthFailed,
    /// A WAF rule matched (detect or enforce).
    WafMatch,
    /// It was answered 404. Weighted low: only a burst of them (a scanner) adds up before
    /// the score decays.
    NotFound,
    /// Its request was cut for sending the body too slowly or missing the request deadline
    /// (slow-body attacks).
    SlowClient,
    /// Its connection was closed for abusing HTTP/2 streams (rapid reset, stream floods).
    StreamAbuse,
}

impl Offence {
    /// The name used in events and in the shared ban set.
    pub fn as_str(self) -> &'static str {
        match self {
            Offence::RateLimited => "rate_limited",
            Offence::AuthFailed => "auth_failed",
            Offence::WafMatch => "waf_match",
            Offence::NotFound => "not_found",
            Offence::SlowClient => "slow_client",
            Offence::StreamAbuse => "stream_abuse",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rate_limited" => Offence::RateLimited,
            "auth_failed" => Offence::AuthFailed,
            "waf_match" => Offence::WafMatch,
            "not_found" => Offence::NotFound,
            "slow_client" => Offence::SlowClient,
            "stream_abuse" => Offence::StreamAbuse,
            _ => return None,
        })
    }
}

/// Points each offence adds to the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OffenceWeights {
    /// Per 429 (default 1).
    pub rate_limited: f64,
    /// Per 401 (default 2).
    pub auth_failed: f64,
    /// Per WAF match (default 5).
    pub waf_match: f64,
    /// Per 404 (default 0.5).
    pub not_found: f64,
    /// Per request cut for a slow body or a missed request deadline (default 5).
    pub slow_client: f64,
    /// Per connection closed for stream abuse (default 10).
    pub stream_abuse: f64,
}

impl Default for OffenceWeights {
    fn default() -> Self {
        Self {
            rate_limited: 1.0,
            auth_failed: 2.0,
            waf_match: 5.0,
            not_found: 0.5,
            slow_client: 5.0,
            stream_abuse: 10.0,
        }
    }
}

impl OffenceWeights {
    fn of(&self, o: Offence) -> f64 {
        match o {
            Offence::RateLimited => self.rate_limited,
            Offence::AuthFailed => self.auth_failed,
            Offence::WafMatch => self.waf_match,
            Offence::NotFound => self.not_found,
            Offence::SlowClient => self.slow_client,
            Offence::StreamAbuse => self.stream_abuse,
        }
    }
}

/// How scores turn into bans (`[bans]`; `mode` stays with the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct BanPolicy {
    /// Score at which a network is banned (default 20).
    pub threshold: f64,
    /// Time for a score to halve without new offences (default 60 s).
    pub half_life: Duration,
    /// Length of a first ban (default 5 min).
    pub ban_duration: Duration,
    /// Each repeat ban lasts this many times the previous one (default 4).
    pub repeat_factor: u32,
    /// Longest ban (default 24 h).
    pub max_ban_duration: Duration,
    /// Repeat count resets after this long without a ban (default 24 h).
    pub strike_memory: Duration,
    /// Networks never scored nor banned, manual bans included (`exempt = [...]`).
    pub exempt: Vec<IpNet>,
    /// Points per offence.
    pub weights: OffenceWeights,
}

impl Default for BanPolicy {
    fn default() -> Self {
        Self {
            threshold: 20.0,
            half_life: Duration::from_secs(60),
            ban_duration: Duration::from_secs(300),
            repeat_factor: 4,
            max_ban_duration: Duration::from_secs(86_400),
            strike_memory: Duration::from_secs(86_400),
            exempt: Vec::new(),
            weights: OffenceWeights::default(),
        }
    }
}

impl BanPolicy {
    /// Refuses settings that would ban nobody or everybody.
    pub fn validate(&self) -> Result<(), LimitError> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(LimitError::InvalidBanPolicy(
                "threshold must be a positive number",
            ));
        }
        if self.half_life.is_zero() {
            return Err(LimitError::InvalidBanPolicy("half_life must be positive"));
        }
        if self.ban_duration.is_zero() || self.max_ban_duration < self.ban_duration {
            return Err(LimitError::InvalidBanPolicy(
                "need 0 < ban_duration <= max_ban_duration",
            ));
        }
        let w = self.weights;
        if [w.rate_limited, w.auth_failed, w.waf_match, w.not_found]
            .iter()
            .any(|x| !(x.is_finite() && *x >= 0.0))
        {
            return Err(LimitError::InvalidBanPolicy(
                "weights must be finite and >= 0",
            ));
        }
        Ok(())
    }

    fn is_exempt(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.exempt.iter().any(|n| n.contains(&ip))
    }

    fn duration_for(&self, strikes: u32) -> Duration {
        let factor = u64::from(self.repeat_factor.max(1)).saturating_pow(strikes.saturating_sub(1));
        let ms = u64::try_from(self.ban_duration.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(ms.saturating_mul(factor)).min(self.max_ban_duration)
    }
}

/// Why a network is banned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanReason {
    /// Its score crossed the threshold; `offence` tipped it over; this is ban number
    /// `strikes` within the strike memory.
    Behaviour {
        /// The offence that crossed the threshold.
        offence: Offence,
        /// 1 for a first ban, 2 for the next, ...
        strikes: u32,
    },
    /// An operator banned it (`rampart ban add`).
    Manual {
        /// The operator's note.
        note: Arc<str>,
    },
}

impl fmt::Display for BanReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanReason::Behaviour { offence, strikes } => {
                write!(f, "behaviour: {} (ban #{strikes})", offence.as_str())
            }
            BanReason::Manual { note } => write!(f, "manual: {note}"),
        }
    }
}

/// An active ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanInfo {
    /// The banned network (IPv4 address or IPv6 /64).
    pub net: ClientNet,
    /// When the ban ends (wall clock, shared between nodes).
    pub until: SystemTime,
    /// Why.
    pub reason: BanReason,
}

/// What [`Bans::record`] did with an offence.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The network's score after this offence (0 right after a ban is placed).
    pub score: f64,
    /// The ban this offence placed, if it crossed the threshold (emit `ban.add`).
    pub banned: Option<BanInfo>,
    /// The address is exempt: nothing was counted.
    pub exempt: bool,
}

#[derive(Debug, Clone, Copy)]
struct ScoreState {
    score: f64,
    at: u64,
    strikes: u32,
    last_ban: u64,
}

#[derive(Debug, Clone)]
struct BanEntry {
    until_ms: u64,
    reason: BanReason,
    /// Known to be in the shared set (so its absence there means it was lifted).
    synced: bool,
}

#[derive(Debug)]
enum BanOp {
    Add {
        net: ClientNet,
        until_ms: u64,
        reason: BanReason,
    },
    Remove {
        net: ClientNet,
    },
}

/// Scores and bans of client networks. Cheap to query at accept; share it behind an `Arc`.
///
/// Scores are per node; bans are shared when [`Bans::spawn_sync`] runs: every change is
/// written to one Redis hash (`PREFIX{bans}:set`, field = network, value = expiry and
/// reason) with a version counter, and every node polls the counter (default every 250 ms)
/// and reloads the hash when it moved, so other nodes learn of a ban or an unban well
/// within 1 s, and catch up by themselves after Redis comes back. Polling was chosen over
/// pub/sub because it needs no subscription to re-establish and works the same on a Cluster
/// (both keys share the `{bans}` hash tag).
#[derive(Debug)]
pub struct Bans {
    policy: BanPolicy,
    clock: Arc<dyn Clock>,
    scores: DashMap<ClientNet, ScoreState>,
    bans: DashMap<ClientNet, BanEntry>,
    sync: OnceLock<mpsc::Sender<BanOp>>,
}

impl Bans {
    /// Bans under `policy` on the system clock.
    pub fn new(policy: BanPolicy) -> Result<Self, LimitError> {
        Self::with_clock(policy, Arc::new(SystemClock::new()))
    }

    /// Bans under `policy` on `clock` (tests pass a [`crate::ManualClock`]).
    pub fn with_clock(policy: BanPolicy, clock: Arc<dyn Clock>) -> Result<Self, LimitError> {
        policy.validate()?;
        Ok(Self {
            policy,
            clock,
            scores: DashMap::new(),
            bans: DashMap::new(),
            sync: OnceLock::new(),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &BanPolicy {
        &self.policy
    }

    /// The active ban of `ip`'s network, if any. One map lookup; call it at accept.
    pub fn is_banned(&self, ip: IpAddr) -> Option<BanInfo> {
        let net = ClientNet::from_ip(ip);
        let e = self.bans.get(&net)?;
        (e.until_ms > self.clock.unix_millis()).then(|| info(net, &e))
    }

    /// Counts an offence of `ip`; bans its network when the decayed score crosses the
    /// threshold. Ban length grows by `repeat_factor` for each repeat within the strike memory.
    pub fn record(&self, ip: IpAddr, offence: Offence) -> Scored {
        if self.policy.is_exempt(ip) {
            return Scored {
                score: 0.0,
                banned: None,
                exempt: true,
            };
        }
        let net = ClientNet::from_ip(ip);
        let now = self.clock.now();
        let already = self.is_banned(ip).is_some();
        let (score, strikes) = {
            let mut s = self.scores.entry(net).or_insert(ScoreState {
                score: 0.0,
                at: now,
                strikes: 0,
                last_ban: 0,
            });
            s.score = self.decayed(s.score, s.at, now) + self.policy.weights.of(offence);
            s.at = now;
            if s.strikes > 0 && now.saturating_sub(s.last_ban) > nanos(self.policy.strike_memory) {
                s.strikes = 0;
            }
            if s.score < self.policy.threshold || already {
                return Scored {
                    score: s.score,
                    banned: None,
                    exempt: false,
                };
            }
            s.strikes = s.strikes.saturating_add(1);
            s.last_ban = now;
            s.score = 0.0;
            (s.score, s.strikes)
        };
        let until_ms = self
            .clock
            .unix_millis()
            .saturating_add(millis(self.policy.duration_for(strikes)));
        let reason = BanReason::Behaviour { offence, strikes };
        metrics::counter!("rampart_bans_added_total", "reason" => "behaviour").increment(1);
        let banned = self.place(net, until_ms, reason);
        Scored {
            score,
            banned: Some(banned),
            exempt: false,
        }
    }

    /// The current (decayed) score of `ip`'s network.
    pub fn score(&self, ip: IpAddr) -> f64 {
        let now = self.clock.now();
        self.scores
            .get(&ClientNet::from_ip(ip))
            .map_or(0.0, |s| self.decayed(s.score, s.at, now))
    }

    /// Bans `ip`'s network for `duration` by hand. Refused for exempt addresses.
    pub fn ban(&self, ip: IpAddr, duration: Duration, note: &str) -> Result<BanInfo, LimitError> {
        if self.policy.is_exempt(ip) {
            return Err(LimitError::Exempt(ip));
        }
        let until_ms = self.clock.unix_millis().saturating_add(millis(duration));
        let note: String = note.chars().filter(|c| !c.is_control()).take(200).collect();
        metrics::counter!("rampart_bans_added_total", "reason" => "manual").increment(1);
        Ok(self.place(
            ClientNet::from_ip(ip),
            until_ms,
            BanReason::Manual { note: note.into() },
        ))
    }

    /// Lifts the ban of `ip`'s network (here and, when synced, on every node); true if one
    /// was active.
    pub fn unban(&self, ip: IpAddr) -> bool {
        let net = ClientNet::from_ip(ip);
        let now = self.clock.unix_millis();
        let was = self
            .bans
            .remove(&net)
            .is_some_and(|(_, e)| e.until_ms > now);
        if let Some(s) = self.scores.get_mut(&net).as_deref_mut() {
            s.score = 0.0;
        }
        self.push(BanOp::Remove { net });
        was
    }

    /// Every active ban, soonest expiry first.
    pub fn list(&self) -> Vec<BanInfo> {
        let now = self.clock.unix_millis();
        let mut v: Vec<BanInfo> = self
            .bans
            .iter()
            .filter(|e| e.until_ms > now)
            .map(|e| info(*e.key(), e.value()))
            .collect();
        v.sort_by_key(|b| b.until);
        v
    }

    /// Drops expired bans and scores that decayed to nothing with no strike to remember.
    /// Call every few seconds from a timer; returns how many entries went.
    pub fn sweep(&self) -> usize {
        let now_ms = self.clock.unix_millis();
        let now = self.clock.now();
        let before = self.bans.len() + self.scores.len();
        self.bans.retain(|_, e| e.until_ms > now_ms);
        let floor = self.policy.threshold / 100.0;
        let memory = nanos(self.policy.strike_memory);
        self.scores.retain(|_, s| {
            self.decayed(s.score, s.at, now) >= floor
                || (s.strikes > 0 && now.saturating_sub(s.last_ban) <= memory)
        });
        before.saturating_sub(self.bans.len() + self.scores.len())
    }

    fn decayed(&self, score: f64, at: u64, now: u64) -> f64 {
        let half_lives = now.saturating_sub(at) as f64 / self.policy.half_life.as_nanos() as f64;
        score * 0.5f64.powf(half_lives)
    }

    fn place(&self, net: ClientNet, until_ms: u64, reason: BanReason) -> BanInfo {
        let entry = BanEntry {
            until_ms,
            reason: reason.clone(),
            synced: false,
        };
        let out = info(net, &entry);
        self.bans.insert(net, entry);
        self.push(BanOp::Add {
            net,
            until_ms,
            reason,
        });
        out
    }

    fn push(&self, op: BanOp) {
        if let Some(tx) = self.sync.get()
            && tx.try_send(op).is_err()
        {
            tracing::warn!("ban sync queue full or closed; this change stays on this node");
        }
    }

    /// Starts sharing bans through the store at `url` (`redis://` or `redis+cluster://`;
    /// `memory://` shares nothing and returns `Ok(None)`). Polls every `poll` (250 ms is a
    /// good value). The task stops when the `Bans` is dropped. Call once, inside a Tokio
    /// runtime; a second call returns `Ok(None)`.
    pub fn spawn_sync(
        self: &Arc<Self>,
        url: &str,
        opts: StoreOptions,
        poll: Duration,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, LimitError> {
        let Some(conn) = StoreConn::open(&StoreUrl::parse(url)?, &opts)? else {
            return Ok(None);
        };
        let (tx, rx) = mpsc::channel(4096);
        if self.sync.set(tx).is_err() {
            return Ok(None);
        }
        let sync = Syncer {
            bans: Arc::downgrade(self),
            conn,
            set_key: format!("{}{{bans}}:set", opts.prefix),
            ver_key: format!("{}{{bans}}:ver", opts.prefix),
            timeout: opts.response_timeout,
        };
        // Everything placed before the sync started is shared too.
        for e in self.bans.iter() {
            let op = BanOp::Add {
                net: *e.key(),
                until_ms: e.until_ms,
                reason: e.reason.clone(),
            };
            self.push(op);
        }
        Ok(Some(tokio::spawn(
            sync.run(rx, poll.max(Duration::from_millis(10))),
        )))
    }
}

fn info(net: ClientNet, e: &BanEntry) -> BanInfo {
    BanInfo {
        net,
        until: UNIX_EPOCH
            .checked_add(Duration::from_millis(e.until_ms))
            .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX))),
        reason: e.reason.clone(),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `until_ms|b|offence|strikes` or `until_ms|m|note`.
fn encode(until_ms: u64, reason: &BanReason) -> String {
    match reason {
        BanReason::Behaviour { offence, strikes } => {
            format!("{until_ms}|b|{}|{strikes}", offence.as_str())
        }
        BanReason::Manual { note } => format!("{until_ms}|m|{note}"),
    }
}

fn decode(v: &str) -> Option<(u64, BanReason)> {
    let mut it = v.splitn(3, '|');
    let until_ms = it.next()?.parse().ok()?;
    let reason = match (it.next()?, it.next()?) {
        ("b", rest) => {
            let (o, s) = rest.split_once('|')?;
            BanReason::Behaviour {
                offence: Offence::parse(o)?,
                strikes: s.parse().ok()?,
            }
        }
        ("m", note) => BanReason::Manual { note: note.into() },
        _ => return None,
    };
    Some((until_ms, reason))
}

fn parse_net(s: &str) -> Option<ClientNet> {
    let addr = s.split('/').next()?;
    addr.parse::<IpAddr>().ok().map(ClientNet::from_ip)
}

/// Direct access to the shared ban set, for the `rampart ban list|add|remove` commands: they
/// run outside the gateway, write to Redis, and running nodes pick the change up at their
/// next poll (within 1 s). No local state; every call is one round trip with a deadline.
#[derive(Debug)]
pub struct BanStore {
    conn: StoreConn,
    set_key: String,
    ver_key: String,
    timeout: Duration,
}

impl BanStore {
    /// Opens the shared ban set at `url` (`memory://` has none: `Ok(None)`). Inside a Tokio
    /// runtime.
    pub fn open(url: &str, opts: &StoreOptions) -> Result<Option<Self>, LimitError> {
        let Some(conn) = StoreConn::open(&StoreUrl::parse(url)?, opts)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            conn,
            set_key: format!("{}{{bans}}:set", opts.prefix),
            ver_key: format!("{}{{bans}}:ver", opts.prefix),
            timeout: opts.response_timeout,
        }))
    }

    /// Bans `ip`'s network for `duration` on every node; refused inside `exempt`.
    pub async fn add(
        &self,
        ip: IpAddr,
        duration: Duration,
        note: &str,
        exempt: &[IpNet],
    ) -> Result<BanInfo, LimitError> {
        if exempt.iter().any(|n| n.contains(&ip.to_canonical())) {
            return Err(LimitError::Exempt(ip));
        }
        let net = ClientNet::from_ip(ip);
        let until_ms = SystemClock::new()
            .unix_millis()
            .saturating_add(millis(duration));
        let note: String = note.chars().filter(|c| !c.is_control()).take(200).collect();
        let reason = BanReason::Manual { note: note.into() };
        let mut pipe = redis::pipe();
        pipe.hset(&self.set_key, net.to_string(), encode(until_ms, &reason))
            .ignore()
            .incr(&self.ver_key, 1)
            .ignore();
        self.run(&pipe).await?;
        Ok(info(
            net,
            &BanEntry {
                until_ms,
                reason,
                synced: true,
            },
        ))
    }

    /// Lifts the ban of `ip`'s network on every node; true if the shared set had one.
    pub async fn remove(&self, ip: IpAddr) -> Result<bool, LimitError> {
        let mut del = redis::cmd("HDEL");
        del.arg(&self.set_key)
            .arg(ClientNet::from_ip(ip).to_string());
        let removed: i64 = self.conn.query(&del, self.timeout).await?;
        let mut incr = redis::cmd("INCR");
        incr.arg(&self.ver_key);
        let _: i64 = self.conn.query(&incr, self.timeout).await?;
        Ok(removed > 0)
    }

    /// Every active ban in the shared set, soonest expiry first.
    pub async fn list(&self) -> Result<Vec<BanInfo>, LimitError> {
        let mut all = redis::cmd("HGETALL");
        all.arg(&self.set_key);
        let map: HashMap<String, String> = self.conn.query(&all, self.timeout).await?;
        let now = SystemClock::new().unix_millis();
        let mut v: Vec<BanInfo> = map
            .iter()
            .filter_map(|(f, val)| {
                let net = parse_net(f)?;
                let (until_ms, reason) = decode(val)?;
                (until_ms > now).then(|| {
                    info(
                        net,
                        &BanEntry {
                            until_ms,
                            reason,
                            synced: true,
                        },
                    )
                })
            })
            .collect();
        v.sort_by_key(|b| b.until);
        Ok(v)
    }

    async fn run(&self, pipe: &redis::Pipeline) -> Result<(), LimitError> {
        let mut c = self.conn.clone();
        match tokio::time::timeout(self.timeout, pipe.query_async::<()>(&mut c)).await {
            Ok(r) => r.map_err(LimitError::Store),
            Err(_) => Err(LimitError::StoreTimeout),
        }
    }
}

struct Syncer {
    bans: Weak<Bans>,
    conn: StoreConn,
    set_key: String,
    ver_key: String,
    timeout: Duration,
}

impl Syncer {
    async fn run(self, mut rx: mpsc::Receiver<BanOp>, poll: Duration) {
        let mut pending: Vec<BanOp> = Vec::new();
        let mut seen_version: Option<Option<String>> = None;
        // The store held this node's writes at some point: finding no version after that
        // means it lost its data.
        let mut store_had_data = false;
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                match rx.try_recv() {
                    Ok(op) => pending.push(op),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            let Some(bans) = self.bans.upgrade() else {
                return;
            };
            if !pending.is_empty() {
                match self.push(&pending).await {
                    Ok(()) => {
                        // The version moved; until it is read again, no version at all
                        // means the store lost what was just written.
                        store_had_data = true;
                        seen_version = None;
                        for op in pending.drain(..) {
                            if let BanOp::Add { net, until_ms, .. } = op
                                && let Some(mut e) = bans.bans.get_mut(&net)
                                && e.until_ms == until_ms
                            {
                                e.synced = true;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "ban sync: push failed, will retry");
                        continue;
                    }
                }
                if !rx.is_empty() {
                    continue;
                }
            }
            let mut get = redis::cmd("GET");
            get.arg(&self.ver_key);
            let version: Option<String> = match self.conn.query(&get, self.timeout).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "ban sync: poll failed, will retry");
                    continue;
                }
            };
            if seen_version.as_ref() == Some(&version) {
                continue;
            }
            if version.is_some() {
                store_had_data = true;
            }
            if version.is_none() && store_had_data {
                // The store lost its data (restart without persistence): share again what
                // this node knows instead of forgetting every ban.
                let now = bans.clock.unix_millis();
                for e in bans.bans.iter().filter(|e| e.until_ms > now) {
                    let op = BanOp::Add {
                        net: *e.key(),
                        until_ms: e.until_ms,
                        reason: e.reason.clone(),
                    };
                    pending.push(op);
                }
                seen_version = None;
                store_had_data = false;
                continue;
            }
            let mut all = redis::cmd("HGETALL");
            all.arg(&self.set_key);
            let map: HashMap<String, String> = match self.conn.query(&all, self.timeout).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "ban sync: reload failed, will retry");
                    continue;
                }
            };
            if !rx.is_empty() {
                continue; // local changes first, then reload
            }
            self.reconcile(&bans, map).await;
            seen_version = Some(version);
        }
    }

    async fn push(&self, ops: &[BanOp]) -> Result<(), LimitError> {
        let mut pipe = redis::pipe();
        for op in ops {
            match op {
                BanOp::Add {
                    net,
                    until_ms,
                    reason,
                } => {
                    pipe.hset(&self.set_key, net.to_string(), encode(*until_ms, reason))
                        .ignore();
                }
                BanOp::Remove { net } => {
                    pipe.hdel(&self.set_key, net.to_string()).ignore();
                }
            }
        }
        pipe.incr(&self.ver_key, 1).ignore();
        let mut c = self.conn.clone();
        match tokio::time::timeout(self.timeout, pipe.query_async::<()>(&mut c)).await {
            Ok(r) => r.map_err(LimitError::Store),
            Err(_) => Err(LimitError::StoreTimeout),
        }
    }

    async fn reconcile(&self, bans: &Bans, map: HashMap<String, String>) {
        let now = bans.clock.unix_millis();
        let mut remote: HashMap<ClientNet, (u64, BanReason)> = HashMap::new();
        let mut expired = Vec::new();
        for (field, value) in map {
            match (parse_net(&field), decode(&value)) {
                (Some(net), Some((until_ms, reason))) if until_ms > now => {
                    remote.insert(net, (until_ms, reason));
                }
                _ => expired.push(field),
            }
        }
        bans.bans
            .retain(|net, e| !e.synced || remote.contains_key(net));
        for (net, (until_ms, reason)) in remote {
            let mut e = bans.bans.entry(net).or_insert(BanEntry {
                until_ms,
                reason: reason.clone(),
                synced: true,
            });
            if e.synced {
                e.until_ms = until_ms;
                e.reason = reason;
            }
        }
        if !expired.is_empty() {
            let mut del = redis::cmd("HDEL");
            del.arg(&self.set_key).arg(expired);
            let _ = self.conn.query::<i64>(&del, self.timeout).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn bans(policy: BanPolicy) -> (Bans, ManualClock) {
        let clock = ManualClock::new();
        (
            Bans::with_clock(policy, Arc::new(clock.clone())).unwrap(),
            clock,
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn crossing_the_threshold_bans_the_network() {
        let (b, clock) = bans(BanPolicy::default());
        let a = ip("2001:db8:0:1::5");
        for _ in 0..3 {
            assert!(b.record(a, Offence::WafMatch).banned.is_none());
        }
        let s = b.record(a, Offence::WafMatch);
        let ban = s.banned.expect("4 × 5 points reach 20");
        assert_eq!(
            ban.reason,
            BanReason::Behaviour {
                offence: Offence::WafMatch,
                strikes: 1
            }
        );
        assert_eq!(ban.net.to_string(), "2001:db8:0:1::/64");
        // Another address of the same /64 is banned too; another /64 is not.
        assert!(b.is_banned(ip("2001:db8:0:1:ffff::1")).is_some());
        assert!(b.is_banned(ip("2001:db8:0:2::1")).is_none());
        clock.advance(Duration::from_secs(299));
        assert!(b.is_banned(a).is_some());
        clock.advance(Duration::from_secs(2));
        assert!(b.is_banned(a).is_none());
    }

    #[test]
    fn scores_decay_so_sparse_offences_never_ban() {
        let (b, clock) = bans(BanPolicy::default());
        let a = ip("192.0.2.1");
        for _ in 0..1000 {
            // 5 points per minute, halving every minute: converges to 10 < 20.
            assert!(b.record(a, Offence::WafMatch).banned.is_none());
            clock.advance(Duration::from_secs(60));
        }
        assert!(b.score(a) < 10.0 + 1e-9);
        // A burst of 404s (0.5 each) does ban.
        let burst = (0..60)
            .filter_map(|_| b.record(a, Offence::NotFound).banned)
            .count();
        assert_eq!(burst, 1);
    }

    #[test]
    fn repeat_offenders_get_longer_bans_up_to_the_cap() {
        let (b, clock) = bans(BanPolicy::default());
        let a = ip("192.0.2.9");
        let mut lengths = Vec::new();
        for _ in 0..6 {
            let ban = loop {
                if let Some(ban) = b.record(a, Offence::AuthFailed).banned {
                    break ban;
                }
            };
            let start = UNIX_EPOCH + Duration::from_millis(clock.unix_millis());
            lengths.push(ban.until.duration_since(start).unwrap().as_secs());
            // Wait out the ban (the score meanwhile decays to ~0).
            while b.is_banned(a).is_some() {
                clock.advance(Duration::from_secs(60));
            }
        }
        assert_eq!(lengths, vec![300, 1200, 4800, 19200, 76800, 86400]);
        // A day and more without a ban: back to the first length.
        clock.advance(Duration::from_secs(2 * 86_400));
        let ban = loop {
            if let Some(ban) = b.record(a, Offence::AuthFailed).banned {
                break ban;
            }
        };
        assert_eq!(
            ban.reason,
            BanReason::Behaviour {
                offence: Offence::AuthFailed,
                strikes: 1
            }
        );
    }

    #[test]
    fn exempt_networks_are_never_banned() {
        let policy = BanPolicy {
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let (b, _) = bans(policy);
        for _ in 0..100 {
            assert!(b.record(ip("::ffff:10.1.2.3"), Offence::WafMatch).exempt);
        }
        assert!(b.is_banned(ip("10.1.2.3")).is_none());
        assert!(matches!(
            b.ban(ip("10.9.9.9"), Duration::from_secs(60), "x"),
            Err(LimitError::Exempt(_))
        ));
    }

    #[test]
    fn manual_ban_list_and_unban() {
        let (b, clock) = bans(BanPolicy::default());
        b.ban(
            ip("198.51.100.7"),
            Duration::from_secs(600),
            "abuse\nreport",
        )
        .unwrap();
        b.ban(ip("198.51.100.8"), Duration::from_secs(60), "short")
            .unwrap();
        let l = b.list();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].net.to_string(), "198.51.100.8");
        assert_eq!(
            l[1].reason,
            BanReason::Manual {
                note: "abusereport".into()
            }
        );
        assert!(b.unban(ip("::ffff:198.51.100.7")));
        assert!(!b.unban(ip("198.51.100.7")));
        assert!(b.is_banned(ip("198.51.100.7")).is_none());
        clock.advance(Duration::from_secs(61));
        assert!(b.list().is_empty());
        assert_eq!(b.sweep(), 1);
    }

    #[test]
    fn wire_format_round_trips() {
        for r in [
            BanReason::Behaviour {
                offence: Offence::NotFound,
                strikes: 3,
            },
            BanReason::Manual { note: "a|b".into() },
        ] {
            assert_eq!(decode(&encode(42, &r)), Some((42, r)));
        }
        assert_eq!(decode("x|b|waf_match|1"), None);
        assert_eq!(decode("1|q|"), None);
        assert_eq!(
            parse_net("2001:db8::/64"),
            Some(ClientNet::from_ip(ip("2001:db8::9")))
        );
    }

    #[test]
    fn bad_policies_are_refused() {
        for p in [
            BanPolicy {
                threshold: 0.0,
                ..Default::default()
            },
            BanPolicy {
                threshold: f64::NAN,
                ..Default::default()
            },
            BanPolicy {
                half_life: Duration::ZERO,
                ..Default::default()
            },
            BanPolicy {
                ban_duration: Duration::from_secs(10),
                max_ban_duration: Duration::from_secs(5),
                ..Default::default()
            },
        ] {
            assert!(Bans::new(p).is_err());
        }
    }
}
