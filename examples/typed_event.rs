//! A typed event through `Job`: orders read from JSON lines as the
//! program's own `Order` type, and a custom aggregation over two of its
//! fields (who spent most, per shop and hour), written against the
//! `Aggregator` trait with `Input = Order` — the shape of Flink's
//! `AggregateFunction<IN, ACC, OUT>`. The key and the event time are
//! field names; `Typed` makes each `Order` from the record's named fields,
//! and an order whose fields make no `Order` is a dead letter saying why.
//!
//! Run with `cargo run --example typed_event`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark::engine::{Collect, Typed};
use tidemark::sources::{DecodeConfig, Format, MemorySource, NamedField};
use tidemark::windows::{Aggregator, WindowSpec};
use tidemark::Job;

/// One order, as the program knows it.
#[derive(Clone, Debug, Deserialize)]
struct Order {
    customer: String,
    amount: f64,
}

/// The customer who spent most in the window, and how much. The
/// accumulator is the spend per customer, so `merge` (adding maps) is
/// associative and commutative, as panes, sessions and workers need; ties
/// go to the first name in order, so the answer never depends on arrival.
#[derive(Clone)]
struct TopSpender;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Top {
    customer: String,
    spent: f64,
}

impl Aggregator for TopSpender {
    type Input = Order;
    type Acc = BTreeMap<String, f64>;
    type Output = Option<Top>;

    fn add(&self, acc: &mut Self::Acc, order: &Order) {
        *acc.entry(order.customer.clone()).or_default() += order.amount;
    }

    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        for (customer, spent) in other {
            *acc.entry(customer.clone()).or_default() += spent;
        }
    }

    fn finish(&self, acc: &Self::Acc) -> Option<Top> {
        let mut top: Option<Top> = None;
        for (customer, &spent) in acc {
            if top.as_ref().is_none_or(|t| spent > t.spent) {
                top = Some(Top {
                    customer: customer.clone(),
                    spent,
                });
            }
        }
        top
    }
}

fn main() -> Result<(), tidemark::JobError> {
    // Two partitions of JSON lines, as two files would hold them; the last
    // line's amount is text, so it makes no `Order`.
    let lines = vec![
        vec![
            r#"{"shop":"north","ts":"2026-12-07T10:05:00Z","customer":"ann","amount":20.0}"#,
            r#"{"shop":"north","ts":"2026-12-07T10:40:00Z","customer":"bob","amount":35.5}"#,
            r#"{"shop":"south","ts":"2026-12-07T10:41:00Z","customer":"cid","amount":12}"#,
        ],
        vec![
            r#"{"shop":"north","ts":"2026-12-07T10:20:00Z","customer":"ann","amount":30.0}"#,
            r#"{"shop":"south","ts":"2026-12-07T11:02:00Z","customer":"dee","amount":8.25}"#,
            r#"{"shop":"south","ts":"2026-12-07T11:03:00Z","customer":"eve","amount":"lots"}"#,
        ],
    ];
    let mut decode = DecodeConfig::new(Format::Jsonl);
    decode.fields.key = "shop".into();
    decode.time_format = tidemark::sources::TimeFormat::Rfc3339;
    decode.read_value = false;
    // The fields an `Order` is made of: decoded as found (the text
    // amount is left for `Typed` to refuse, naming it).
    decode.named = ["customer", "amount"]
        .map(|name| NamedField {
            name: name.into(),
            number: false,
        })
        .to_vec();
    let source = MemorySource::from_lines(lines, decode);
    let (rows, collected) = Collect::new();
    let (dead, letters) = Collect::new();
    let summary = Job::builder()
        .source(Arc::new(source))
        .window(WindowSpec::tumbling(3_600_000))
        .aggregator(Typed::new("top", &["customer", "amount"], TopSpender))
        .workers(2)
        .results_sink(rows)
        .dead_letter_sink(dead)
        .build()?
        .run()?;
    for row in collected.lock().map(|r| r.clone()).unwrap_or_default() {
        let hour = row.window.start / 3_600_000 % 24;
        match &row.value {
            Some(top) => println!(
                "{:<6} {hour:02}:00 top spender {} ({:.2})",
                row.key, top.customer, top.spent
            ),
            None => println!("{:<6} {hour:02}:00 no orders", row.key),
        }
    }
    for letter in letters.lock().map(|l| l.clone()).unwrap_or_default() {
        println!(
            "dead letter (partition {}, offset {}): {}",
            letter.partition, letter.offset, letter.reason
        );
    }
    println!(
        "{} orders, {} dead letter(s)",
        summary.records, summary.dead_letters
    );
    Ok(())
}
