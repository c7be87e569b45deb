//! [`NexmarkSource`]: the bid stream of the Nexmark benchmark, generated
//! deterministically and counter-based, so that any offset of any partition
//! opens in O(1).
//!
//! # The model it follows
//!
//! The event model is the one of the Nexmark project's Flink generator
//! (`nexmark-flink`, itself derived from Apache Beam's Nexmark generator),
//! with its default configuration:
//!
//! - Events are numbered `0, 1, 2, …` ([`NexmarkConfig::events`] of them,
//!   persons and auctions included). Out of every [`TOTAL_PROPORTION`] (50)
//!   consecutive event numbers, the first [`PERSON_PROPORTION`] (1) is a new
//!   person, the next [`AUCTION_PROPORTION`] (3) are new auctions and the
//!   remaining [`BID_PROPORTION`] (46) are bids: event `n` is a bid when
//!   `n % 50 >= 4`.
//! - Event `n` has the timestamp `start + ⌊n · 1000 / events_per_second⌋`
//!   ms, with `start` = [`BASE_TIME`]: the model's fixed inter-event delay
//!   `1 000 000 / firstEventRate` µs with `firstEventRate` the rate of the
//!   whole stream (one generator timeline). The default rate is the
//!   Nexmark benchmark's source rate, 10 000 000 events per second, so
//!   100 million events span 10 s of event time.
//! - A bid at event `n` names an auction and a bidder as `BidGenerator`
//!   does: with `lastAuction = ⌊n / 50⌋ · 3 + 2` and `lastPerson = ⌊n / 50⌋`
//!   (the model's `lastBase0AuctionId` / `lastBase0PersonId` for a bid),
//!   - the auction is, with probability `1 − 1/`[`HOT_AUCTION_RATIO`]
//!     (`1 − 1/2`), the hot one, `⌊lastAuction / 100⌋ · 100`; otherwise a
//!     uniform one in `max(0, lastAuction − 100) ..= lastAuction + 10`
//!     (the in-flight auctions, [`NUM_IN_FLIGHT_AUCTIONS`], plus a lead of
//!     [`AUCTION_ID_LEAD`]);
//!   - the bidder is, with probability `1 − 1/`[`HOT_BIDDER_RATIO`]
//!     (`1 − 1/4`), the hot one, `⌊lastPerson / 100⌋ · 100 + 1`; otherwise
//!     a uniform one among the last `min(lastPerson + 1, 1000)` persons
//!     ([`NUM_ACTIVE_PEOPLE`]) plus a lead of [`PERSON_ID_LEAD`];
//!   - both ids are offset by [`FIRST_AUCTION_ID`] / [`FIRST_PERSON_ID`]
//!     (1000);
//!   - the price is `round(10^(u · 6) · 100)` for a uniform `u` in `[0, 1)`
//!     (`PriceGenerator`), so between 100 and 100 000 000 (cents).
//!
//! # What is simplified
//!
//! - Only bids become records. Persons and auctions are not generated at
//!   all: they only take their event numbers (and so their share of the
//!   timeline), as in the model's interleaving.
//! - The random draws are not Java's `SplittableRandom(eventId)`: each bid
//!   takes its draws from `h = splitmix64(splitmix64(seed) ^ n)` (draw `i`
//!   is `splitmix64(h + i)`), so the streams have the model's distributions
//!   but not its exact values, and a seed chooses the stream.
//! - Bids carry no `channel`, `url`, `extra` or other string fields; a
//!   record holds one key ([`NexmarkKey`]: the auction, the bidder, or a
//!   constant) and the price as [`Value::Int`].
//! - One timeline: the rate is constant (the model's `SQUARE` rate shape
//!   with equal first and next rates), there is no out-of-order grouping
//!   (`outOfOrderGroupSize = 1`, the model's default) and timestamps are
//!   computed in integer arithmetic. With several partitions, partition `p`
//!   holds the bids whose event number is `≡ p (mod partitions)`, in
//!   order — the event numbers, ids and times are those of one generator,
//!   whereas `nexmark-flink` gives each of its parallel generators its own
//!   id range and timeline. So the same configuration yields the same bids
//!   whatever the number of partitions; only their split differs.
//! - `event_time` is in epoch milliseconds from the fixed [`BASE_TIME`]
//!   rather than the wall clock at start-up.
//!
//! # Addressing
//!
//! Within one period of `lcm(50, partitions)` event numbers, each partition
//! holds the same pattern of bids; a partition's offsets count its bids, so
//! bid `j` of partition `p` is found with one division and a table lookup,
//! and is computed on its own: nothing before it is generated.

use std::ops::Range;
use std::sync::Arc;

use compact_str::ToCompactString;
use serde::{Deserialize, Serialize};

use crate::computed;
use crate::generator::MAX_PARTITIONS;
use crate::record::{Decoded, Key, Offset, PartitionId, Record, Value, MAX_EVENT_TIME};
use crate::source::{PartitionReader, Source, SourceError};

/// New persons in every [`TOTAL_PROPORTION`] events (the model's `personProportion`).
pub const PERSON_PROPORTION: u64 = 1;
/// New auctions in every [`TOTAL_PROPORTION`] events (`auctionProportion`).
pub const AUCTION_PROPORTION: u64 = 3;
/// Bids in every [`TOTAL_PROPORTION`] events (`bidProportion`).
pub const BID_PROPORTION: u64 = 46;
/// The length of the person/auction/bid cycle of event numbers.
pub const TOTAL_PROPORTION: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;
/// The first auction id (the model's `FIRST_AUCTION_ID`).
pub const FIRST_AUCTION_ID: u64 = 1000;
/// The first person id (the model's `FIRST_PERSON_ID`).
pub const FIRST_PERSON_ID: u64 = 1000;
/// A bid is for the hot auction with probability `1 − 1/HOT_AUCTION_RATIO`
/// (the model's `hotAuctionRatio`, default 2).
pub const HOT_AUCTION_RATIO: u64 = 2;
/// A bid is by the hot bidder with probability `1 − 1/HOT_BIDDER_RATIO`
/// (the model's `hotBiddersRatio`, default 4).
pub const HOT_BIDDER_RATIO: u64 = 4;
/// Hot auctions and bidders are chosen once per this many auctions or
/// persons (`BidGenerator`'s `HOT_AUCTION_RATIO` / `HOT_BIDDER_RATIO`, 100).
pub const HOT_BATCH: u64 = 100;
/// How many recent auctions a non-hot bid may name (`numInFlightAuctions`).
pub const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
/// How many not-yet-created auction ids a bid may name (`AUCTION_ID_LEAD`).
pub const AUCTION_ID_LEAD: u64 = 10;
/// How many recent persons a non-hot bid may come from (`numActivePeople`).
pub const NUM_ACTIVE_PEOPLE: u64 = 1000;
/// How many not-yet-created person ids a bid may name (`PERSON_ID_LEAD`).
pub const PERSON_ID_LEAD: u64 = 10;
/// The timestamp of event 0, epoch ms.
pub const BASE_TIME: i64 = 1_700_000_000_000;

/// What a bid record carries as its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NexmarkKey {
    /// The auction id, as decimal text (queries grouped by auction, q5).
    #[default]
    Auction,
    /// The bidder id, as decimal text (queries grouped by bidder, q11).
    Bidder,
    /// The constant `"all"` (whole-stream aggregates, q7).
    Constant,
}

/// The knobs of the Nexmark bid generator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NexmarkConfig {
    /// How many events, persons and auctions included (default 10 000 000);
    /// about 46/50 of them are bids and become records.
    pub events: u64,
    /// How many partitions (default 1).
    pub partitions: u32,
    /// The seed of the random draws (default 1).
    pub seed: u64,
    /// Events per second of event time, over the whole stream (default
    /// 10 000 000, the Nexmark benchmark's source rate).
    pub events_per_second: u64,
    /// What goes into each record's key (default the auction).
    pub key: NexmarkKey,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            events: 10_000_000,
            partitions: 1,
            seed: 1,
            events_per_second: 10_000_000,
            key: NexmarkKey::Auction,
        }
    }
}

impl NexmarkConfig {
    fn validate(&self) -> Result<(), String> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(format!("partitions must be between 1 and {MAX_PARTITIONS}"));
        }
        if self.events_per_second == 0 {
            return Err("events_per_second must be greater than 0".to_owned());
        }
        let last = u128::from(self.events.saturating_sub(1));
        let span = last * 1000 / u128::from(self.events_per_second);
        if BASE_TIME as u128 + span > MAX_EVENT_TIME as u128 {
            return Err("the configuration yields event times beyond 2^53 ms".to_owned());
        }
        Ok(())
    }
}

/// One generated bid, with all its fields (a record keeps one of the ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bid {
    /// The event number of the bid in the whole stream.
    pub event: u64,
    /// The auction bid on.
    pub auction: u64,
    /// The person bidding.
    pub bidder: u64,
    /// The price, in cents.
    pub price: i64,
    /// The event time, epoch ms.
    pub event_time: i64,
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform integer in `0..n` from 64 random bits.
fn below(bits: u64, n: u64) -> u64 {
    ((u128::from(bits) * u128::from(n)) >> 64) as u64
}

/// A uniform float in `[0, 1)` from 64 random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Whether event number `n` is a bid.
fn is_bid(n: u64) -> bool {
    n % TOTAL_PROPORTION >= PERSON_PROPORTION + AUCTION_PROPORTION
}

/// The bids of one partition within one period of event numbers.
#[derive(Debug)]
struct PartitionPlan {
    /// The steps `k` (event number `p + partitions · k`) within one period
    /// that are bids, ascending.
    bid_steps: Vec<u64>,
    /// How many bids the partition holds.
    bids: u64,
}

#[derive(Debug)]
struct Plan {
    config: NexmarkConfig,
    /// Steps per period: `lcm(50, partitions) / partitions`.
    period_steps: u64,
    partitions: Vec<PartitionPlan>,
    seed_hash: u64,
}

impl Plan {
    fn new(config: NexmarkConfig) -> Self {
        let count = u64::from(config.partitions);
        let period_steps = TOTAL_PROPORTION / gcd(TOTAL_PROPORTION, count);
        let partitions = (0..count)
            .map(|p| {
                let bid_steps: Vec<u64> = (0..period_steps)
                    .filter(|k| is_bid(p + count * k))
                    .collect();
                // Steps of this partition below `events`.
                let steps = config.events.saturating_sub(p).div_ceil(count);
                let rest = steps % period_steps;
                let bids = steps / period_steps * bid_steps.len() as u64
                    + bid_steps.iter().filter(|&&k| k < rest).count() as u64;
                PartitionPlan { bid_steps, bids }
            })
            .collect();
        Plan {
            seed_hash: splitmix64(config.seed),
            period_steps,
            partitions,
            config,
        }
    }

    /// The event number of bid `offset` of `partition` (which holds it).
    fn event_number(&self, partition: PartitionId, plan: &PartitionPlan, offset: Offset) -> u64 {
        let per_period = (plan.bid_steps.len() as u64).max(1);
        let step = offset / per_period * self.period_steps
            + plan
                .bid_steps
                .get((offset % per_period) as usize)
                .copied()
                .unwrap_or(0);
        u64::from(partition) + u64::from(self.config.partitions) * step
    }

    /// The bid at event number `n` (which must be a bid).
    fn bid(&self, n: u64) -> Bid {
        let h = splitmix64(self.seed_hash ^ n);
        let draw = |i: u64| splitmix64(h.wrapping_add(i));
        let epoch = n / TOTAL_PROPORTION;
        // The model's lastBase0AuctionId / lastBase0PersonId at a bid.
        let last_auction = epoch * AUCTION_PROPORTION + (AUCTION_PROPORTION - 1);
        let last_person = epoch * PERSON_PROPORTION + (PERSON_PROPORTION - 1);
        let auction = if below(draw(1), HOT_AUCTION_RATIO) > 0 {
            last_auction / HOT_BATCH * HOT_BATCH
        } else {
            let min = last_auction.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
            min + below(draw(2), last_auction - min + 1 + AUCTION_ID_LEAD)
        };
        let bidder = if below(draw(3), HOT_BIDDER_RATIO) > 0 {
            last_person / HOT_BATCH * HOT_BATCH + 1
        } else {
            let people = last_person + 1;
            let active = people.min(NUM_ACTIVE_PEOPLE);
            people - active + below(draw(4), active + PERSON_ID_LEAD)
        };
        let price = (10f64.powf(unit(draw(5)) * 6.0) * 100.0).round() as i64;
        let span = u128::from(n) * 1000 / u128::from(self.config.events_per_second);
        Bid {
            event: n,
            auction: auction + FIRST_AUCTION_ID,
            bidder: bidder + FIRST_PERSON_ID,
            price,
            event_time: BASE_TIME.saturating_add(i64::try_from(span).unwrap_or(i64::MAX)),
        }
    }

    fn record(&self, partition: PartitionId, plan: &PartitionPlan, offset: Offset) -> Record {
        let bid = self.bid(self.event_number(partition, plan, offset));
        let key: Key = match self.config.key {
            NexmarkKey::Auction => bid.auction.to_compact_string(),
            NexmarkKey::Bidder => bid.bidder.to_compact_string(),
            NexmarkKey::Constant => Key::const_new("all"),
        };
        Record {
            partition,
            offset,
            key,
            event_time: bid.event_time,
            value: Value::Int(bid.price),
            fields: Vec::new(),
        }
    }
}

/// The Nexmark bid stream; see the [module docs](self) for exactly what it
/// yields and how it relates to the Nexmark model. Bounded: each partition
/// ends with [`ReadStatus::End`](crate::ReadStatus::End).
///
/// ```
/// use tidemark_sources::nexmark::{NexmarkConfig, NexmarkSource};
/// use tidemark_sources::{ReadStatus, Source};
///
/// let source = NexmarkSource::new(NexmarkConfig { events: 100, ..NexmarkConfig::default() })?;
/// let mut reader = source.open(0, 0)?;
/// let mut out = Vec::new();
/// assert_eq!(reader.read(1000, &mut out)?, ReadStatus::End);
/// assert_eq!(out.len(), 92); // 46 bids in every 50 events
/// # Ok::<(), tidemark_sources::SourceError>(())
/// ```
#[derive(Clone, Debug)]
pub struct NexmarkSource {
    plan: Arc<Plan>,
}

impl NexmarkSource {
    /// A generator for `config`, or [`SourceError::InvalidConfig`] when a
    /// knob is out of range (no partitions, a rate of 0, event times past
    /// 2^53 ms).
    pub fn new(config: NexmarkConfig) -> Result<Self, SourceError> {
        config.validate().map_err(SourceError::InvalidConfig)?;
        Ok(NexmarkSource {
            plan: Arc::new(Plan::new(config)),
        })
    }

    /// The configuration this generator was built from.
    pub fn config(&self) -> &NexmarkConfig {
        &self.plan.config
    }

    /// How many bids (records) partition `partition` holds.
    pub fn len(&self, partition: PartitionId) -> Option<u64> {
        self.plan.partitions.get(partition as usize).map(|p| p.bids)
    }

    /// How many bids (records) all partitions hold together.
    pub fn total_bids(&self) -> u64 {
        self.plan.partitions.iter().map(|p| p.bids).sum()
    }

    /// Bid `offset` of `partition` with all its fields, if it exists.
    pub fn bid(&self, partition: PartitionId, offset: Offset) -> Option<Bid> {
        let plan = self.plan.partitions.get(partition as usize)?;
        (offset < plan.bids).then(|| {
            self.plan
                .bid(self.plan.event_number(partition, plan, offset))
        })
    }

    /// Bid `offset` of `partition` as a record, if it exists.
    pub fn event(&self, partition: PartitionId, offset: Offset) -> Option<Record> {
        let plan = self.plan.partitions.get(partition as usize)?;
        (offset < plan.bids).then(|| self.plan.record(partition, plan, offset))
    }
}

impl computed::Computed for Plan {
    fn partition_count(&self) -> u32 {
        self.config.partitions
    }

    fn len(&self, partition: PartitionId) -> Option<u64> {
        self.partitions.get(partition as usize).map(|p| p.bids)
    }

    fn fill(&self, partition: PartitionId, offsets: Range<Offset>, out: &mut Vec<Decoded>) {
        if let Some(plan) = self.partitions.get(partition as usize) {
            out.extend(offsets.map(|offset| Ok(self.record(partition, plan, offset))));
        }
    }
}

impl Source for NexmarkSource {
    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
        Ok((0..self.plan.config.partitions).collect())
    }

    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        computed::open(&self.plan, partition, from)
    }

    fn describe(&self) -> String {
        format!(
            "nexmark {}",
            serde_json::to_string(&self.plan.config).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::record::ReadStatus;

    fn source(events: u64, partitions: u32, seed: u64, key: NexmarkKey) -> NexmarkSource {
        NexmarkSource::new(NexmarkConfig {
            events,
            partitions,
            seed,
            key,
            ..NexmarkConfig::default()
        })
        .unwrap()
    }

    fn read_all(source: &NexmarkSource, partition: PartitionId, from: Offset) -> Vec<Record> {
        let mut reader = source.open(partition, from).unwrap();
        let mut out = Vec::new();
        while reader.read(97, &mut out).unwrap() == ReadStatus::More {}
        out.into_iter().map(Result::unwrap).collect()
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = read_all(&source(5_000, 3, 7, NexmarkKey::Auction), 1, 0);
        let b = read_all(&source(5_000, 3, 7, NexmarkKey::Auction), 1, 0);
        let c = read_all(&source(5_000, 3, 8, NexmarkKey::Auction), 1, 0);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn seek_equals_reading_up_to_it() {
        for partitions in [1, 3, 7, 50, 64] {
            let s = source(20_011, partitions, 3, NexmarkKey::Bidder);
            for p in 0..partitions {
                let all = read_all(&s, p, 0);
                assert_eq!(all.len() as u64, s.len(p).unwrap());
                // With 50 partitions, partitions 0..4 hold persons and
                // auctions only: no records.
                let seeks = [0, 1, 45, 46, 47, all.len() / 2, all.len()];
                for from in seeks.into_iter().filter(|&f| f <= all.len()) {
                    assert_eq!(
                        read_all(&s, p, from as u64),
                        all[from..],
                        "p{p} from {from}"
                    );
                }
                for (i, r) in all.iter().enumerate() {
                    assert_eq!((r.partition, r.offset), (p, i as u64));
                }
            }
            assert!(s.open(0, s.len(0).unwrap() + 1).is_err());
        }
        assert!(source(100, 2, 1, NexmarkKey::Auction).open(2, 0).is_err());
    }

    #[test]
    fn bids_are_46_of_50_and_same_whatever_the_partitions() {
        let events = 123_457;
        let expected = (0..events).filter(|&n| is_bid(n)).count() as u64;
        let mut reference: Vec<Bid> = Vec::new();
        for partitions in [1, 2, 5, 8, 50, 51] {
            let s = source(events, partitions, 11, NexmarkKey::Auction);
            assert_eq!(s.total_bids(), expected);
            let mut bids: Vec<Bid> = (0..partitions)
                .flat_map(|p| (0..s.len(p).unwrap()).map(move |j| (p, j)))
                .map(|(p, j)| s.bid(p, j).unwrap())
                .collect();
            bids.sort_by_key(|b| b.event);
            assert!(bids.iter().all(|b| is_bid(b.event)));
            if reference.is_empty() {
                reference = bids;
            } else {
                assert_eq!(bids, reference);
            }
        }
        let ratio = expected as f64 / events as f64;
        assert!((ratio - 46.0 / 50.0).abs() < 1e-3, "{ratio}");
        assert_eq!(source(100, 1, 1, NexmarkKey::Auction).len(0), Some(92));
    }

    #[test]
    fn hot_auctions_and_bidders_dominate() {
        let s = source(200_000, 1, 5, NexmarkKey::Auction);
        let bids: Vec<Bid> = (0..s.len(0).unwrap())
            .map(|j| s.bid(0, j).unwrap())
            .collect();
        let n = bids.len() as f64;
        let hot_auction = bids
            .iter()
            .filter(|b| (b.auction - FIRST_AUCTION_ID).is_multiple_of(HOT_BATCH))
            .count() as f64;
        let hot_bidder = bids
            .iter()
            .filter(|b| (b.bidder - FIRST_PERSON_ID) % HOT_BATCH == 1)
            .count() as f64;
        // 1/2 hot, plus the few random picks that land on a hot id.
        assert!(
            (0.48..0.53).contains(&(hot_auction / n)),
            "{}",
            hot_auction / n
        );
        assert!(
            (0.73..0.78).contains(&(hot_bidder / n)),
            "{}",
            hot_bidder / n
        );
        // Within the bids of one hot batch, the hot auction is the most bid on.
        let mut counts: HashMap<u64, u64> = HashMap::new();
        for b in bids.iter().filter(|b| b.event < 50 * 33) {
            *counts.entry(b.auction).or_default() += 1;
        }
        let top = counts.iter().max_by_key(|(_, c)| **c).map(|(a, _)| *a);
        assert_eq!(top, Some(FIRST_AUCTION_ID));
        // Ids stay near the stream's current ones.
        for b in &bids {
            let epoch = b.event / TOTAL_PROPORTION;
            assert!(b.auction <= FIRST_AUCTION_ID + epoch * 3 + 2 + AUCTION_ID_LEAD);
            assert!(b.bidder <= FIRST_PERSON_ID + epoch + PERSON_ID_LEAD);
        }
    }

    #[test]
    fn prices_keys_and_times() {
        let s = source(100_000, 1, 9, NexmarkKey::Constant);
        let records = read_all(&s, 0, 0);
        let prices: Vec<i64> = records
            .iter()
            .map(|r| match r.value {
                Value::Int(v) => v,
                Value::Float(f) => f as i64,
            })
            .collect();
        assert!(prices.iter().all(|p| (100..=100_000_000).contains(p)));
        // log10(price / 100) is uniform on [0, 6): median near 10^3 · 100.
        let mut sorted = prices.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2] as f64;
        assert!((50_000.0..200_000.0).contains(&median), "{median}");
        assert!(records.iter().all(|r| r.key == "all"));
        // 10 M events/s: 10 000 events per ms, times never decrease.
        assert_eq!(records.first().map(|r| r.event_time), Some(BASE_TIME));
        assert_eq!(records.last().map(|r| r.event_time), Some(BASE_TIME + 9));
        assert!(records
            .windows(2)
            .all(|w| w[0].event_time <= w[1].event_time));

        let by_bidder = source(1_000, 1, 9, NexmarkKey::Bidder);
        let bid = by_bidder.bid(0, 10).unwrap();
        let record = by_bidder.event(0, 10).unwrap();
        assert_eq!(record.key, bid.bidder.to_string());
        assert_eq!(record.value, Value::Int(bid.price));
    }

    #[test]
    fn rejects_bad_configs() {
        for config in [
            NexmarkConfig {
                partitions: 0,
                ..NexmarkConfig::default()
            },
            NexmarkConfig {
                events_per_second: 0,
                ..NexmarkConfig::default()
            },
            NexmarkConfig {
                events: u64::MAX,
                events_per_second: 1,
                ..NexmarkConfig::default()
            },
        ] {
            assert!(matches!(
                NexmarkSource::new(config),
                Err(SourceError::InvalidConfig(_))
            ));
        }
        let empty = source(0, 4, 1, NexmarkKey::Auction);
        assert_eq!(empty.total_bids(), 0);
        assert!(read_all(&empty, 3, 0).is_empty());
    }
}
