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
            let mut cells = vec!["key".to_owned(), "start".into(), "end".into()];
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
        self.out
            .write_field(row.key.as_bytes())
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
