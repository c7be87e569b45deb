//! CSV result rows: `key,start,end,<fields>,kind` with a header line, cells
//! quoted by the `csv` crate where they need it.

use std::io::{self, Write};

use super::{Frontier, Sink};
use crate::aggregator::JobAggregator;
use crate::event::Row;

/// A sink writing result rows as CSV, with a header line naming the
/// aggregator's fields.
pub struct CsvRows<A> {
    agg: A,
    out: csv::Writer<Box<dyn Write + Send>>,
    header: bool,
    describe: String,
}

impl<A: JobAggregator> CsvRows<A> {
    /// CSV rows of `agg`'s output written to `out`; `describe` names the
    /// destination in error messages.
    pub fn new(out: impl Write + Send + 'static, agg: A, describe: impl Into<String>) -> Self {
        CsvRows {
            agg,
            out: csv::Writer::from_writer(Box::new(out)),
            header: false,
            describe: describe.into(),
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header {
            self.header = true;
            let mut cells = match self.agg.key_names() {
                [] => vec!["key".to_owned()],
                names => names.to_vec(),
            };
            cells.extend(["start".to_owned(), "end".into()]);
            cells.extend(self.agg.field_names());
            cells.push("kind".into());
            self.out.write_record(&cells).map_err(io::Error::other)?;
        }
        Ok(())
    }
}

impl<A: JobAggregator> Sink<Row<A::Output>> for CsvRows<A> {
    fn write(&mut self, row: &Row<A::Output>) -> io::Result<()> {
        self.header()?;
        let mut ints = itoa::Buffer::new();
        if self.agg.key_names().is_empty() {
            self.out.write_field(row.key.as_bytes())
        } else {
            tidemark_sources::split_key(&row.key)
                .iter()
                .try_for_each(|part| self.out.write_field(part.as_bytes()))
        }
        .and_then(|()| self.out.write_field(ints.format(row.window.start)))
        .and_then(|()| self.out.write_field(ints.format(row.window.end)))
        .map_err(io::Error::other)?;
        for cell in self.agg.csv_fields(&row.value) {
            self.out.write_field(cell).map_err(io::Error::other)?;
        }
        self.out
            .write_field(row.kind.name())
            .and_then(|()| self.out.write_record(None::<&[u8]>))
            .map_err(io::Error::other)
    }

    fn commit(&mut self, _frontier: Frontier) -> io::Result<()> {
        self.header()?;
        self.out.flush()
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tidemark_sources::join_key;
    use tidemark_windows::{Aggregator, Aggs, ChangeKind, Field, Number, Phase, Rec, Window};

    use super::*;
    use crate::sink::json::{Encode, LateJson, RowJson, TimeText};
    use crate::{Event, LateReason, LateRecord};

    /// A `Write` into a shared buffer.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_compound_key_is_one_column_per_field_in_every_output() {
        let aggs = Aggs::parse(&["count", "revenue=sum(amount)", "latest(user)"])
            .unwrap()
            .with_key_columns(vec!["country".into(), "page".into()]);
        let mut acc = Default::default();
        for (amount, user, t) in [(Field::Int(4), "ann", 5), (Field::Null, "bo,b", 7)] {
            aggs.add(
                &mut acc,
                &Rec {
                    value: Number::Int(1),
                    fields: [amount, Field::from(user)].into_iter().collect(),
                    order: (t, 0, t as u64),
                },
            );
        }
        let row = Row {
            time: 2_000,
            phase: Phase::Fire,
            kind: ChangeKind::Final,
            key: join_key(&["US", "ho\"me"]),
            window: Window::new(1_000, 2_000),
            value: aggs.finish(&acc),
        };
        let buffer = Shared::default();
        let mut csv = CsvRows::new(buffer.clone(), aggs.clone(), "test");
        csv.write(&row).unwrap();
        csv.commit(Frontier::Done).unwrap();
        assert_eq!(
            String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap(),
            "country,page,start,end,count,revenue,latest_user,kind\nUS,\"ho\"\"me\",1000,2000,2,4,\"bo,b\",final\n"
        );
        let mut json = String::new();
        RowJson(aggs.clone(), TimeText::EpochMs).encode(&row, &mut json);
        assert_eq!(
            json,
            r#"{"country":"US","page":"ho\"me","start":1000,"end":2000,"count":2,"revenue":4,"latest_user":"bo,b","kind":"final"}"#
        );
        let late = LateRecord {
            event: Event {
                stream_time: 9,
                partition: 1,
                offset: 3,
                key: join_key(&["FR", "cart"]),
                time: 5,
                value: Number::Int(1),
                fields: vec![Field::Null, Field::from("cid")],
            },
            missed: vec![Window::new(0, 10)],
            reason: LateReason::TooLate,
            table: None,
        };
        let mut text = String::new();
        LateJson::of(&aggs, TimeText::EpochMs).encode(&late, &mut text);
        assert_eq!(
            text,
            r#"{"partition":1,"offset":3,"country":"FR","page":"cart","ts":5,"value":1,"fields":{"amount":null,"user":"cid"},"missed":[{"start":0,"end":10}],"reason":"too late"}"#
        );
    }
}
